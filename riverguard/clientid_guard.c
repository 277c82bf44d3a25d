/*
 * Riverguard's client id guard: a Mosquitto 2 plugin that binds client ids to
 * usernames. Loaded before the dynamic security plugin, it refuses a login
 * whose client id is bound to another username, so that no login can take over
 * the session of the hub, an edge or a device; anything else it defers to the
 * plugins after it.
 *
 * Option: plugin_opt_bound_ids FILE, one "client-id username" pair a line,
 * read again when it changes. An unreadable or malformed file refuses every
 * login (fails closed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

struct binding {
	char *clientid;
	char *username;
};

static mosquitto_plugin_id_t *plugin_id;
static char *bound_ids_path;
static struct binding *bindings;
static size_t binding_count;
static int loaded_ok;
static struct timespec loaded_mtime;
static off_t loaded_size;

static void free_bindings(void)
{
	for(size_t i = 0; i < binding_count; i++){
		free(bindings[i].clientid);
		free(bindings[i].username);
	}
	free(bindings);
	bindings = NULL;
	binding_count = 0;
}

static int load_bindings(void)
{
	FILE *file = fopen(bound_ids_path, "r");
	char line[1024];
	size_t capacity = 0;

	free_bindings();
	loaded_ok = 0;
	if(file == NULL){
		mosquitto_log_printf(MOSQ_LOG_ERR, "clientid_guard: cannot read %s: every login is refused", bound_ids_path);
		return MOSQ_ERR_UNKNOWN;
	}
	while(fgets(line, sizeof(line), file)){
		char clientid[512], username[512], rest[2];
		size_t length = strlen(line);
		if(length > 0 && line[length - 1] != '\n' && !feof(file)){
			goto malformed;
		}
		if(line[0] == '\n' || line[0] == '#'){
			continue;
		}
		if(sscanf(line, "%511s %511s %1s", clientid, username, rest) != 2){
			goto malformed;
		}
		if(binding_count == capacity){
			capacity = capacity ? capacity * 2 : 64;
			struct binding *grown = realloc(bindings, capacity * sizeof(*bindings));
			if(grown == NULL){
				goto malformed;
			}
			bindings = grown;
		}
		bindings[binding_count].clientid = strdup(clientid);
		bindings[binding_count].username = strdup(username);
		binding_count++;
	}
	fclose(file);
	loaded_ok = 1;
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "clientid_guard: %zu client ids bound", binding_count);
	return MOSQ_ERR_SUCCESS;

malformed:
	fclose(file);
	free_bindings();
	mosquitto_log_printf(MOSQ_LOG_ERR, "clientid_guard: %s is malformed: every login is refused", bound_ids_path);
	return MOSQ_ERR_UNKNOWN;
}

static void reload_if_changed(void)
{
	struct stat info;
	if(stat(bound_ids_path, &info) != 0){
		free_bindings();
		loaded_ok = 0;
		return;
	}
	if(info.st_mtim.tv_sec != loaded_mtime.tv_sec || info.st_mtim.tv_nsec != loaded_mtime.tv_nsec
			|| info.st_size != loaded_size){
		loaded_mtime = info.st_mtim;
		loaded_size = info.st_size;
		load_bindings();
	}
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *auth = event_data;
	const char *clientid = mosquitto_client_id(auth->client);
	(void)event;
	(void)userdata;

	reload_if_changed();
	if(!loaded_ok){
		return MOSQ_ERR_AUTH;
	}
	if(clientid == NULL){
		return MOSQ_ERR_AUTH;
	}
	for(size_t i = 0; i < binding_count; i++){
		if(strcmp(bindings[i].clientid, clientid) == 0){
			if(auth->username == NULL || strcmp(bindings[i].username, auth->username) != 0){
				mosquitto_log_printf(MOSQ_LOG_WARNING,
						"clientid_guard: refused client id %s for login %s (bound to %s)",
						clientid, auth->username ? auth->username : "(none)", bindings[i].username);
				return MOSQ_ERR_AUTH;
			}
			break;
		}
	}
	return MOSQ_ERR_PLUGIN_DEFER;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for(int i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5){
			return 5;
		}
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	plugin_id = identifier;
	for(int i = 0; i < option_count; i++){
		if(strcmp(options[i].key, "bound_ids") == 0){
			bound_ids_path = strdup(options[i].value);
		}
	}
	if(bound_ids_path == NULL){
		fprintf(stderr, "clientid_guard: plugin_opt_bound_ids is required\n");
		return MOSQ_ERR_INVAL;
	}
	reload_if_changed();
	if(!loaded_ok){
		/* The broker's log is not open yet while plugins start. */
		fprintf(stderr, "clientid_guard: %s is missing or malformed: the broker must not start\n",
				bound_ids_path);
		return MOSQ_ERR_INVAL;
	}
	return mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	(void)options;
	(void)option_count;
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	free_bindings();
	free(bound_ids_path);
	bound_ids_path = NULL;
	return MOSQ_ERR_SUCCESS;
}
