// Node-RED settings for the benchmark peer: no editor, plain credentials file
// (written per run by simulators/load.py), quiet logs.
module.exports = {
  uiHost: "127.0.0.1",
  uiPort: parseInt(process.env.PEER_PORT, 10),
  userDir: process.env.PEER_USER_DIR,
  flowFile: "flows.json",
  credentialSecret: false,
  httpAdminRoot: false,
  logging: { console: { level: "warn", metrics: false, audit: false } },
};
