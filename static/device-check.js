/* The join page's device check: a camera preview, a live microphone level, a test sound,
   and a choice of camera, microphone and speaker, kept in this browser (localStorage) for the
   room to open with. When the browser refuses, it says what to do in this browser. */
(function () {
  "use strict";

  var section = document.getElementById("device-check");
  if (!section || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return; // the room itself says what is missing
  }
  var STORE = "portico.devices";
  var startButton = document.getElementById("check-start");
  var statusLine = document.getElementById("check-status");
  var devices = document.getElementById("check-devices");
  var preview = document.getElementById("check-preview");
  var cameraChoice = document.getElementById("check-camera");
  var microphoneChoice = document.getElementById("check-microphone");
  var speakerChoice = document.getElementById("check-speaker");
  var speakerBox = document.getElementById("check-speaker-choice");
  var level = document.getElementById("check-level");
  var soundButton = document.getElementById("check-sound");

  var stream = null;
  var audio = null; // the AudioContext, made on the first click (browsers want a gesture)
  var meterSource = null;
  var canChooseSpeaker = typeof HTMLMediaElement.prototype.setSinkId === "function";

  section.hidden = false;

  // What the check says, in the page's language: the template passes it (data-text), since
  // the CSP allows no inline script. English stays here for a page without it.
  var words = {};
  try {
    words = JSON.parse(section.dataset.text || "{}") || {};
  } catch (error) {
    words = {};
  }
  function t(key, english) {
    return words[key] || english;
  }

  function say(text, state) {
    statusLine.textContent = text;
    section.dataset.state = state;
  }

  function saved() {
    try {
      return JSON.parse(window.localStorage.getItem(STORE) || "{}") || {};
    } catch (error) {
      return {};
    }
  }

  function save() {
    var choice = { camera: cameraChoice.value, microphone: microphoneChoice.value, speaker: speakerChoice.value };
    try {
      window.localStorage.setItem(STORE, JSON.stringify(choice));
    } catch (error) {
      // Private browsing may refuse storage: the room then opens with the defaults.
    }
  }

  // What to do, in this browser, when it refused the camera and microphone.
  function howToAllow() {
    var agent = navigator.userAgent;
    var phone = /Android|iPhone|iPad|iPod|Mobile/.test(agent);
    if (/Firefox|FxiOS/.test(agent)) {
      return phone
        ? t("firefox_phone", "In Firefox, tap the lock by the address, allow the camera and microphone, then reload this page.")
        : t("firefox", "In Firefox, click the crossed-out camera by the address, remove the block on the camera and " +
          "microphone, then reload this page.");
    }
    if (/Edg\//.test(agent) || /Chrome|CriOS|Chromium/.test(agent)) {
      if (/CriOS/.test(agent)) {
        return t("chrome_ios", "On iPhone and iPad, open the Settings app, find Chrome, switch on Camera and Microphone, " +
          "then reload this page.");
      }
      return phone
        ? t("chrome_phone", "In Chrome, tap the icon left of the address, then Permissions, allow Camera and Microphone, " +
          "then reload this page.")
        : t("chrome", "Click the camera icon at the right of the address bar, choose to always allow this site, " +
          "then reload this page.");
    }
    if (/Safari/.test(agent)) {
      return phone
        ? t("safari_phone", "In Safari, tap \u201caA\u201d in the address bar, then Website Settings, set Camera and " +
          "Microphone to Allow, then reload this page.")
        : t("safari", "In Safari, open the Safari menu, then Settings for this website, set Camera and Microphone to " +
          "Allow, then reload this page.");
    }
    return t("other_browser", "Allow this page to use your camera and microphone in your browser's settings, then reload this page.");
  }

  function problem(error) {
    var name = error && error.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      return t("not_allowed", "Your browser did not allow this page to use your camera and microphone.") + " " + howToAllow();
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") {
      return t("no_devices", "No camera or microphone was found. Connect one (or switch it on), then press the button again.");
    }
    if (name === "NotReadableError" || name === "AbortError") {
      return t("devices_busy", "Your camera or microphone is being used by another program. Close that program, then press " +
        "the button again.");
    }
    return t("devices_failed", "Your camera and microphone could not be started. Reload this page to try again.");
  }

  function fill(select, kind, wanted, current) {
    var options = [];
    return navigator.mediaDevices.enumerateDevices().then(function (list) {
      select.textContent = "";
      list.filter(function (device) { return device.kind === kind; }).forEach(function (device, index) {
        var option = document.createElement("option");
        option.value = device.deviceId;
        option.textContent = device.label || (kind === "audiooutput" ? t("speaker_n", "Speaker") : t("device_n", "Device")) + " " + (index + 1);
        options.push(option);
        select.appendChild(option);
      });
      var pick = options.filter(function (option) { return option.value === current; })[0] ||
        options.filter(function (option) { return option.value === wanted; })[0];
      if (pick) {
        select.value = pick.value;
      }
      return options.length;
    });
  }

  function wanted(id) {
    return id ? { deviceId: { exact: id } } : true;
  }

  async function open(choice) {
    if (stream) {
      stream.getTracks().forEach(function (track) { track.stop(); });
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: wanted(choice.camera), audio: wanted(choice.microphone) });
    } catch (error) {
      if (error && error.name === "OverconstrainedError" && (choice.camera || choice.microphone)) {
        return open({}); // a device chosen last time is gone: the defaults
      }
      if (error && (error.name === "NotFoundError" || error.name === "NotReadableError")) {
        stream = await navigator.mediaDevices.getUserMedia({ audio: wanted(choice.microphone) }); // no camera
      } else {
        throw error;
      }
    }
    preview.srcObject = stream;
    meter();
    var video = stream.getVideoTracks()[0];
    var sound = stream.getAudioTracks()[0];
    await fill(cameraChoice, "videoinput", choice.camera, video && video.getSettings().deviceId);
    await fill(microphoneChoice, "audioinput", choice.microphone, sound && sound.getSettings().deviceId);
    if (canChooseSpeaker && await fill(speakerChoice, "audiooutput", choice.speaker, choice.speaker) > 0) {
      speakerBox.hidden = false;
    }
    save();
    say(video ? t("working", "Your camera and microphone work. Speak to see the level move, then press Join when it is time.")
      : t("sound_only", "Your microphone works, but no camera was found: you can still join with sound only."), "working");
  }

  function meter() {
    if (!audio || !stream.getAudioTracks().length) {
      return;
    }
    if (meterSource) {
      meterSource.disconnect();
    }
    meterSource = audio.createMediaStreamSource(stream);
    var analyser = audio.createAnalyser();
    analyser.fftSize = 1024;
    meterSource.connect(analyser);
    var samples = new Float32Array(analyser.fftSize);
    var source = meterSource;
    function tick() {
      if (source !== meterSource) {
        return;
      }
      analyser.getFloatTimeDomainData(samples);
      var sum = 0;
      for (var i = 0; i < samples.length; i += 1) {
        sum += samples[i] * samples[i];
      }
      level.value = Math.min(1, Math.sqrt(sum / samples.length) * 4);
      level.textContent = level.value > 0.05 ? t("sound", "sound") : t("silent", "silent");
      window.requestAnimationFrame(tick);
    }
    tick();
  }

  startButton.addEventListener("click", async function () {
    var AudioContext = window.AudioContext || window.webkitAudioContext;
    if (!audio && AudioContext) {
      audio = new AudioContext();
    }
    say(t("starting", "Starting your camera and microphone…"), "starting");
    try {
      await open(saved());
    } catch (error) {
      say(problem(error), "refused");
      return;
    }
    devices.hidden = false;
    startButton.hidden = true;
  });

  function changed() {
    open({ camera: cameraChoice.value, microphone: microphoneChoice.value, speaker: speakerChoice.value })
      .catch(function (error) { say(problem(error), "refused"); });
  }
  cameraChoice.addEventListener("change", changed);
  microphoneChoice.addEventListener("change", changed);
  speakerChoice.addEventListener("change", save);

  // A short two-note chime, through the chosen speaker where the browser lets us choose.
  soundButton.addEventListener("click", async function () {
    if (!audio) {
      return;
    }
    var out = audio.createMediaStreamDestination();
    var gain = audio.createGain();
    gain.connect(out);
    [523.25, 659.25].forEach(function (pitch, index) {
      var note = audio.createOscillator();
      note.frequency.value = pitch;
      note.connect(gain);
      note.start(audio.currentTime + index * 0.35);
      note.stop(audio.currentTime + index * 0.35 + 0.3);
    });
    gain.gain.value = 0.3;
    var player = new Audio();
    player.srcObject = out.stream;
    if (canChooseSpeaker && speakerChoice.value) {
      await player.setSinkId(speakerChoice.value).catch(function () {});
    }
    await player.play().catch(function () {});
    section.dataset.sound = "played";
    say(t("playing", "Playing a test sound. If you hear nothing, turn the volume up or choose another speaker."), "working");
    window.setTimeout(function () { player.pause(); player.srcObject = null; }, 1200);
  });

  // The room opens the camera again itself: let go of it before leaving this page.
  window.addEventListener("pagehide", function () {
    if (stream) {
      stream.getTracks().forEach(function (track) { track.stop(); });
    }
  });
}());
