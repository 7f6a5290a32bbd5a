/* Portico's video room: camera preview, mute and camera switches, and a 1:1 WebRTC call.
   Signalling goes through Portico: short POSTs out, a long-poll in. Each page load is a new
   "connection" of its seat. Every page says "hello" when it starts; the clinician's page
   answers a client's hello with an offer, the client's page answers a clinician's hello with
   a hello of its own (so the clinician offers) and answers offers. A reload is simply a new
   page saying hello, which is how people get back into the same call. */
(function () {
  "use strict";

  var room = document.getElementById("room");
  if (!room) {
    return;
  }
  var role = room.dataset.role;
  var me = room.dataset.connection;
  var peerName = room.dataset.peerName;
  var signalsUrl = room.dataset.signalsUrl;
  var csrfToken = room.dataset.csrfToken;
  var iceServers = [];
  var iceTransportPolicy = room.dataset.iceTransportPolicy === "relay" ? "relay" : "all";
  // A client in the practice's waiting room: camera on, nothing sent, until the clinician lets them in.
  var waiting = room.dataset.waiting === "true";
  try {
    iceServers = JSON.parse(room.dataset.iceServers || "[]");
  } catch (error) {
    iceServers = [];
  }
  // What the room says, in the page's language: the template passes it (data-text), since
  // the CSP allows no inline script. English stays here for a page without it.
  var words = {};
  try {
    words = JSON.parse(room.dataset.text || "{}") || {};
  } catch (error) {
    words = {};
  }
  function t(key, english) {
    return (words[key] || english).replace("{name}", peerName);
  }

  var statusLine = document.getElementById("room-status");
  var closingNote = document.getElementById("room-closing");
  var qualityNote = document.getElementById("room-quality");
  var localVideo = document.getElementById("local-video");
  var remoteVideo = document.getElementById("remote-video");
  var playButton = document.getElementById("play-button");
  var muteButton = document.getElementById("mute-button");
  var cameraButton = document.getElementById("camera-button");
  var leaveForm = document.getElementById("leave-form");

  var localStream = null;
  var pc = null; // the call with the other side's current page...
  var peer = null; // ...whose connection id this is
  var pendingCandidates = [];
  var peerPresent = false; // the other side's seat is in the room, as the last poll said
  var stopped = false;
  var leaving = false;
  var outbox = Promise.resolve();
  var recovery = null; // the timer of the next attempt to get a dropped call back
  var attempts = 0; // attempts since the call was last connected
  var restartAsked = 0; // when this page (the offerer) last restarted ICE
  var relayRefused = false; // the TURN server refused this page's credentials
  var quality = null; // the timer of the connection quality check
  var lastCounts = null;

  // How often to try getting a dropped call back, and after how many ICE restarts to give
  // up on this connection and build a new one.
  var RETRY_MS = 6000;
  var REBUILD_EVERY = 3;

  function show(text, state) {
    statusLine.textContent = text;
    room.dataset.state = state;
  }

  function pause(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  // ---- signalling -------------------------------------------------------------------------

  function send(kind, body, to) {
    var payload = JSON.stringify({
      connection: me, kind: kind, body: body ? JSON.stringify(body) : "", to: to || null
    });
    // One at a time, so the other side gets them in the order they were made.
    outbox = outbox.then(function () {
      return fetch(signalsUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
        body: payload
      }).then(function (response) {
        if (response.status === 409 || response.status === 410) {
          return response.json().then(stop);
        }
      });
    }).catch(function () {
      // Lost on the way: a new hello or offer after the next reconnection makes up for it.
    });
    return outbox;
  }

  async function poll() {
    var failures = 0;
    while (!stopped) {
      var response = null;
      try {
        response = await fetch(signalsUrl + "?connection=" + encodeURIComponent(me),
                               { credentials: "same-origin", cache: "no-store" });
      } catch (error) {
        response = null;
      }
      if (stopped) {
        return;
      }
      if (response && [404, 409, 410].indexOf(response.status) >= 0) {
        stop(await response.json().catch(function () { return {}; }));
        return;
      }
      if (response && response.redirected) { // to a sign-in page: the clinician's session ended
        stop({ message: t("signed_out", "You were signed out of the portal. Sign in again to come back to this session.") });
        return;
      }
      var data = null;
      if (response && response.ok) {
        data = await response.json().catch(function () { return null; });
      }
      if (!data) {
        failures += 1;
        await pause(Math.min(1000 * failures, 5000));
        continue;
      }
      failures = 0;
      closingNote.hidden = data.open;
      peerPresent = data.peer;
      if (waiting && !data.waiting) {
        waiting = false; // let in: from here on, as if the clinician had just arrived
        show("Waiting for " + peerName + " to join…", "waiting");
        send("hello");
      }
      for (var i = 0; i < data.messages.length; i += 1) {
        try {
          await handle(data.messages[i]);
        } catch (error) {
          window.console.warn("signalling message not handled", data.messages[i].kind, error);
        }
      }
    }
  }

  async function handle(message) {
    var body = message.body ? JSON.parse(message.body) : null;
    if (message.kind === "hello") {
      if (message.from === peer && pc && ["failed", "closed"].indexOf(pc.connectionState) < 0) {
        // Already talking to that page; it may be asking us (the offerer) to get the call back.
        if (role === "clinician" && body && body.rebuild) {
          startCall(peer);
          await makeOffer();
        } else if (role === "clinician" && body && body.restart && Date.now() - restartAsked > RETRY_MS / 2) {
          await restartIce();
        }
        return;
      }
      startCall(message.from);
      if (role === "clinician") {
        await makeOffer();
      } else {
        send("hello", null, peer);
      }
      return;
    }
    if (message.from !== peer) {
      if (message.kind !== "offer" || role !== "client") {
        return; // from an earlier page of theirs
      }
      startCall(message.from);
    }
    if (message.kind === "offer") {
      await pc.setRemoteDescription(body);
      await addPendingCandidates();
      await pc.setLocalDescription(await pc.createAnswer());
      send("answer", pc.localDescription, peer);
    } else if (message.kind === "answer") {
      if (pc.signalingState === "have-local-offer") {
        await pc.setRemoteDescription(body);
        await addPendingCandidates();
      }
    } else if (message.kind === "candidate") {
      if (pc.remoteDescription) {
        await pc.addIceCandidate(body).catch(function () {});
      } else {
        pendingCandidates.push(body);
      }
    } else if (message.kind === "bye") {
      endCall();
      show(peerName + " has left. Waiting for them to come back…", "waiting");
    }
  }

  async function addPendingCandidates() {
    var waiting = pendingCandidates;
    pendingCandidates = [];
    for (var i = 0; i < waiting.length; i += 1) {
      await pc.addIceCandidate(waiting[i]).catch(function () {});
    }
  }

  // ---- the call ---------------------------------------------------------------------------

  function startCall(peerId) {
    endCall();
    peer = peerId;
    room.dataset.peer = peerId;
    var call = new RTCPeerConnection({ iceServers: iceServers, iceTransportPolicy: iceTransportPolicy });
    pc = call;
    localStream.getTracks().forEach(function (track) { call.addTrack(track, localStream); });
    if (localStream.getVideoTracks().length === 0) {
      call.addTransceiver("video", { direction: "recvonly" }); // no camera here: still see theirs
    }
    call.onicecandidateerror = function (event) {
      // 401: the relay did not accept this page's credentials (a wrong secret, or expired).
      if (call === pc && (event.errorCode === 401 || event.errorCode === 403) && !relayRefused) {
        relayRefused = true;
        if (call.connectionState !== "connected") {
          show(relayRefusedText(), "relay-refused");
        }
      }
    };
    call.onicecandidate = function (event) {
      if (event.candidate && call === pc) {
        send("candidate", event.candidate.toJSON(), peer);
      }
    };
    call.ontrack = function (event) {
      var stream = event.streams[0] || new MediaStream([event.track]);
      if (remoteVideo.srcObject !== stream) {
        remoteVideo.srcObject = stream;
      }
      remoteVideo.play().then(function () {
        playButton.hidden = true;
      }).catch(function () {
        playButton.hidden = false; // the browser wants a click before playing sound
      });
    };
    call.onconnectionstatechange = function () {
      if (call !== pc) {
        return;
      }
      if (call.connectionState === "connected") {
        connected();
      } else if (call.connectionState === "disconnected") {
        // Often back by itself within a second or two; if not, the first retry restarts ICE.
        dropped(t("dropped", "The connection dropped. Reconnecting…"), 2000);
      } else if (call.connectionState === "failed") {
        if (!peerPresent) { // their page is gone without a goodbye (a crash, a dead network)
          endCall();
          show(t("peer_lost", "The connection with {name} was lost. Waiting for them to come back…"), "waiting");
        } else {
          dropped(t("video_lost", "The video connection was lost. Reconnecting…"), 0);
        }
      }
    };
    show(peerName + " is here. Connecting…", "connecting");
    if (!recovery) {
      keepTrying(RETRY_MS * 2); // a call that never connects is tried again, too
    }
  }

  function relayRefusedText() {
    return t("relay_refused", "The call cannot connect: the practice's video relay server did not accept this room's " +
      "sign-in. Please tell the practice, so they can check their video (TURN) settings.");
  }

  function connected() {
    stopTrying();
    attempts = 0;
    relayRefused = false;
    show(t("connected", "Connected with {name}."), "connected");
    checkQuality();
  }

  // The call dropped (Wi-Fi to mobile data, a laptop lid, a relay restarting): get it back
  // without a reload. ICE restarts first (same call, new network paths), then, every
  // REBUILD_EVERY attempts, a whole new call.
  function dropped(text, firstTryIn) {
    show(text, "reconnecting");
    qualityNote.hidden = true;
    if (!recovery || firstTryIn === 0) {
      keepTrying(firstTryIn);
    }
  }

  function keepTrying(delay) {
    stopTrying();
    recovery = setTimeout(function () {
      recovery = null;
      if (stopped || !pc || !peer || pc.connectionState === "connected") {
        return;
      }
      attempts += 1;
      var rebuild = attempts % REBUILD_EVERY === 0;
      if (relayRefused) {
        show(relayRefusedText(), "relay-refused");
      } else if (room.dataset.state !== "reconnecting" && room.dataset.state !== "connecting") {
        show(t("reconnecting", "Reconnecting…"), "reconnecting");
      }
      if (role === "clinician") {
        if (rebuild) {
          startCall(peer);
          makeOffer();
        } else {
          restartIce();
        }
      } else {
        send("hello", rebuild ? { rebuild: true } : { restart: true }, peer);
      }
      keepTrying(RETRY_MS);
    }, delay);
  }

  function stopTrying() {
    if (recovery) {
      clearTimeout(recovery);
    }
    recovery = null;
  }

  async function restartIce() {
    var call = pc;
    if (!call || call.signalingState !== "stable" && call.signalingState !== "have-local-offer") {
      return;
    }
    restartAsked = Date.now();
    await call.setLocalDescription(await call.createOffer({ iceRestart: true }));
    if (call === pc) {
      send("offer", call.localDescription, peer);
    }
  }

  // A hint when the connection is poor, from the call's own statistics: the round-trip time
  // of the pair of addresses in use, and the share of packets lost since the last look.
  async function checkQuality() {
    if (quality) {
      clearTimeout(quality);
    }
    quality = null;
    var call = pc;
    if (!call || call.connectionState !== "connected" || stopped) {
      return;
    }
    var report = await call.getStats().catch(function () { return null; });
    if (!report || call !== pc) {
      return;
    }
    var pair = null;
    var received = 0;
    var lost = 0;
    report.forEach(function (stat) {
      if (stat.type === "transport" && stat.selectedCandidatePairId) {
        pair = report.get(stat.selectedCandidatePairId) || pair;
      } else if (stat.type === "inbound-rtp") {
        received += stat.packetsReceived || 0;
        lost += stat.packetsLost || 0;
      }
    });
    var local = pair && report.get(pair.localCandidateId);
    if (local) {
      room.dataset.route = local.candidateType; // "relay": the call goes through TURN
    }
    var rtt = pair && pair.currentRoundTripTime;
    var loss = 0;
    if (lastCounts && received + lost > lastCounts.received + lastCounts.lost) {
      loss = (lost - lastCounts.lost) / (received + lost - lastCounts.received - lastCounts.lost);
    }
    lastCounts = { received: received, lost: lost };
    var poor = (rtt && rtt > 0.4) || loss > 0.05;
    qualityNote.hidden = !poor;
    room.dataset.quality = poor ? "poor" : "good";
    quality = setTimeout(checkQuality, 3000);
  }

  async function makeOffer() {
    var call = pc;
    await call.setLocalDescription(await call.createOffer());
    if (call === pc) {
      send("offer", call.localDescription, peer);
    }
  }

  function endCall() {
    stopTrying();
    lastCounts = null;
    if (pc) {
      pc.onicecandidate = null;
      pc.onicecandidateerror = null;
      pc.ontrack = null;
      pc.onconnectionstatechange = null;
      pc.close();
    }
    pc = null;
    peer = null;
    delete room.dataset.peer;
    pendingCandidates = [];
    remoteVideo.srcObject = null;
  }

  function stop(answer) {
    stopped = true;
    endCall();
    if (localStream) {
      localStream.getTracks().forEach(function (track) { track.stop(); });
    }
    muteButton.disabled = true;
    cameraButton.disabled = true;
    show((answer && answer.message) || t("ended", "This window is no longer in the session."), "ended");
  }

  // ---- camera, microphone and buttons -------------------------------------------------------

  function cameraProblem(error) {
    var name = error && error.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      return t("not_allowed", "Your browser did not allow this page to use your camera and microphone. Allow them " +
        "(look for the camera icon by the address bar), then reload this page.");
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") {
      return t("no_devices", "No camera or microphone was found. Connect one, then reload this page.");
    }
    if (name === "NotReadableError" || name === "AbortError") {
      return t("devices_busy", "Your camera or microphone is being used by another program. Close that program, then reload this page.");
    }
    return t("devices_failed", "Your camera and microphone could not be started. Reload this page to try again.");
  }

  // The devices chosen in the join page's check (in this browser); one unplugged since falls
  // back to the defaults. (Chromium ignores an "ideal" microphone, hence "exact" and a retry.)
  function chosenDevices() {
    try {
      return JSON.parse(window.localStorage.getItem("portico.devices") || "{}") || {};
    } catch (error) {
      return {};
    }
  }

  function wanted(id) {
    return id ? { deviceId: { exact: id } } : true;
  }

  async function openCamera(chosen) {
    chosen = chosen || chosenDevices();
    if (chosen.speaker && typeof remoteVideo.setSinkId === "function") {
      remoteVideo.setSinkId(chosen.speaker).catch(function () {});
    }
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: wanted(chosen.microphone), video: wanted(chosen.camera) });
    } catch (error) {
      if (error && error.name === "OverconstrainedError" && (chosen.camera || chosen.microphone)) {
        return openCamera({}); // a device chosen in the check is gone since: the defaults
      }
      if (error && (error.name === "NotFoundError" || error.name === "NotReadableError")) {
        return navigator.mediaDevices.getUserMedia({ audio: wanted(chosen.microphone) }); // sound only
      }
      throw error;
    }
  }

  muteButton.addEventListener("click", function () {
    var muting = !room.classList.contains("muted");
    localStream.getAudioTracks().forEach(function (track) { track.enabled = !muting; });
    muteButton.textContent = muting ? t("unmute", "Unmute") : t("mute", "Mute");
    room.classList.toggle("muted", muting);
  });

  cameraButton.addEventListener("click", function () {
    var turningOff = !room.classList.contains("camera-off");
    localStream.getVideoTracks().forEach(function (track) { track.enabled = !turningOff; });
    cameraButton.textContent = turningOff ? t("camera_on", "Turn camera on") : t("camera_off", "Turn camera off");
    room.classList.toggle("camera-off", turningOff);
  });

  playButton.addEventListener("click", function () {
    remoteVideo.play().then(function () { playButton.hidden = true; }).catch(function () {});
  });

  leaveForm.addEventListener("submit", function () {
    leaving = true;
    stopped = true;
  });

  // Closing or reloading the page tells the other side at once (it may come straight back).
  window.addEventListener("pagehide", function () {
    if (leaving || !navigator.sendBeacon) {
      return;
    }
    stopped = true;
    var goodbye = new FormData();
    goodbye.append("csrf_token", csrfToken);
    goodbye.append("connection", me);
    goodbye.append("how", "page_closed");
    navigator.sendBeacon(room.dataset.leaveUrl, goodbye);
  });
  // The device found a network again (Wi-Fi back, or mobile data instead): try at once.
  window.addEventListener("online", function () {
    if (pc && peer && pc.connectionState !== "connected" && !stopped) {
      keepTrying(0);
    }
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      window.location.reload(); // back from the cache: a new page, a new connection
    }
  });

  async function start() {
    if (!window.RTCPeerConnection || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      show(window.isSecureContext === false
        ? t("insecure", "Video calls need a secure (https) address, and this page does not have one. Please tell the practice.")
        : t("unsupported", "This browser cannot make video calls. Please open the link in a recent Chrome, Edge, Firefox or Safari."),
        "unsupported");
      return;
    }
    try {
      localStream = await openCamera();
    } catch (error) {
      show(cameraProblem(error), "no-camera");
      return;
    }
    localVideo.srcObject = localStream;
    muteButton.disabled = false;
    cameraButton.disabled = localStream.getVideoTracks().length === 0;
    if (waiting) {
      show(room.dataset.waitingText, "waiting-room");
    } else {
      show(t("waiting", "Waiting for {name} to join…"), "waiting");
      send("hello");
    }
    poll();
  }

  start();
}());
