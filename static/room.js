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
  try {
    iceServers = JSON.parse(room.dataset.iceServers || "[]");
  } catch (error) {
    iceServers = [];
  }

  var statusLine = document.getElementById("room-status");
  var closingNote = document.getElementById("room-closing");
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
        stop({ message: "You were signed out of the portal. Sign in again to come back to this session." });
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
        return; // already talking to that page
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
    var call = new RTCPeerConnection({ iceServers: iceServers });
    pc = call;
    localStream.getTracks().forEach(function (track) { call.addTrack(track, localStream); });
    if (localStream.getVideoTracks().length === 0) {
      call.addTransceiver("video", { direction: "recvonly" }); // no camera here: still see theirs
    }
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
        show("Connected with " + peerName + ".", "connected");
      } else if (call.connectionState === "disconnected") {
        show("The connection is unsteady. Reconnecting…", "reconnecting");
      } else if (call.connectionState === "failed") {
        if (!peerPresent) { // their page is gone without a goodbye (a crash, a dead network)
          endCall();
          show("The connection with " + peerName + " was lost. Waiting for them to come back…", "waiting");
        } else if (role === "clinician") {
          show("The video connection was lost. Reconnecting…", "reconnecting");
          startCall(peer);
          makeOffer();
        } else {
          show("The video connection was lost. Reconnecting…", "reconnecting");
          send("hello", null, peer);
        }
      }
    };
    show(peerName + " is here. Connecting…", "connecting");
  }

  async function makeOffer() {
    var call = pc;
    await call.setLocalDescription(await call.createOffer());
    if (call === pc) {
      send("offer", call.localDescription, peer);
    }
  }

  function endCall() {
    if (pc) {
      pc.onicecandidate = null;
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
    show((answer && answer.message) || "This window is no longer in the session.", "ended");
  }

  // ---- camera, microphone and buttons -------------------------------------------------------

  function cameraProblem(error) {
    var name = error && error.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      return "Your browser did not allow this page to use your camera and microphone. Allow them " +
        "(look for the camera icon by the address bar), then reload this page.";
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") {
      return "No camera or microphone was found. Connect one, then reload this page.";
    }
    if (name === "NotReadableError" || name === "AbortError") {
      return "Your camera or microphone is being used by another program. Close that program, then reload this page.";
    }
    return "Your camera and microphone could not be started. Reload this page to try again.";
  }

  async function openCamera() {
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    } catch (error) {
      if (error && (error.name === "NotFoundError" || error.name === "NotReadableError")) {
        return navigator.mediaDevices.getUserMedia({ audio: true }); // no camera: sound only
      }
      throw error;
    }
  }

  muteButton.addEventListener("click", function () {
    var muting = muteButton.textContent === "Mute";
    localStream.getAudioTracks().forEach(function (track) { track.enabled = !muting; });
    muteButton.textContent = muting ? "Unmute" : "Mute";
    room.classList.toggle("muted", muting);
  });

  cameraButton.addEventListener("click", function () {
    var turningOff = cameraButton.textContent === "Turn camera off";
    localStream.getVideoTracks().forEach(function (track) { track.enabled = !turningOff; });
    cameraButton.textContent = turningOff ? "Turn camera on" : "Turn camera off";
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
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      window.location.reload(); // back from the cache: a new page, a new connection
    }
  });

  async function start() {
    if (!window.RTCPeerConnection || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      show(window.isSecureContext === false
        ? "Video calls need a secure (https) address, and this page does not have one. Please tell the practice."
        : "This browser cannot make video calls. Please open the link in a recent Chrome, Edge, Firefox or Safari.",
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
    show("Waiting for " + peerName + " to join…", "waiting");
    send("hello");
    poll();
  }

  start();
}());
