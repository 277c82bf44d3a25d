// The audible alarm, generated with WebAudio oscillators (no audio file to load).
// Browsers only let a page make sound after a user gesture, so the context is
// created on the login click (or any later click/key) and the page shows whether
// sound is armed or blocked.

const ALARM_PERIOD_MS = 1600;
const LOST_PERIOD_MS = 6000;
// Not silent, not deafening: the operating system volume sets the real level.
const LEVEL = 0.25;

export class AlertSound {
  constructor() {
    this.context = null;
    this.supported = Boolean(globalThis.AudioContext || globalThis.webkitAudioContext);
    this.mode = "idle";
    this.timer = null;
    this.onChange = () => {};
  }

  // Call from a user gesture (click, key press); harmless to call again.
  arm() {
    if (!this.supported) return;
    if (!this.context) {
      const Context = globalThis.AudioContext || globalThis.webkitAudioContext;
      this.context = new Context();
      this.context.addEventListener("statechange", () => {
        this.#restart();
        this.onChange();
      });
    }
    if (this.context.state !== "running") {
      this.context.resume().then(
        () => this.onChange(),
        (error) => console.warn("audio resume refused", error),
      );
    }
    this.onChange();
  }

  get armed() {
    return this.context?.state === "running";
  }

  // "unsupported" | "blocked" | "sounding" | "armed"
  get status() {
    if (!this.supported) return "unsupported";
    if (!this.armed) return "blocked";
    return this.mode === "idle" ? "armed" : "sounding";
  }

  // "alarm": a critical alarm waits for acknowledgement; "lost": the hub is unreachable
  // or cannot hear the field.
  setMode(mode) {
    if (mode === this.mode) return;
    this.mode = mode;
    this.#restart();
    this.onChange();
  }

  // One short chime for a new alarm of any severity.
  chime() {
    if (!this.armed) return;
    const start = this.context.currentTime + 0.02;
    this.#tone(660, start, 0.18, "sine");
    this.#tone(990, start + 0.2, 0.3, "sine");
  }

  #restart() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.mode === "idle") return;
    const pattern = this.mode === "alarm" ? () => this.#alarmBurst() : () => this.#lostBeep();
    pattern();
    this.timer = setInterval(pattern, this.mode === "alarm" ? ALARM_PERIOD_MS : LOST_PERIOD_MS);
  }

  #alarmBurst() {
    if (!this.armed) return;
    const start = this.context.currentTime + 0.02;
    for (let i = 0; i < 4; i += 1) {
      this.#tone(i % 2 === 0 ? 880 : 1175, start + i * 0.2, 0.16, "square");
    }
  }

  #lostBeep() {
    if (!this.armed) return;
    const start = this.context.currentTime + 0.02;
    this.#tone(330, start, 0.25, "triangle");
    this.#tone(247, start + 0.35, 0.4, "triangle");
  }

  #tone(frequency, start, duration, type) {
    const oscillator = this.context.createOscillator();
    const gain = this.context.createGain();
    oscillator.type = type;
    oscillator.frequency.value = frequency;
    // Short ramps avoid clicks at the start and end of each beep.
    gain.gain.setValueAtTime(0, start);
    gain.gain.linearRampToValueAtTime(LEVEL, start + 0.01);
    gain.gain.setValueAtTime(LEVEL, start + duration - 0.02);
    gain.gain.linearRampToValueAtTime(0, start + duration);
    oscillator.connect(gain).connect(this.context.destination);
    oscillator.start(start);
    oscillator.stop(start + duration + 0.01);
  }
}
