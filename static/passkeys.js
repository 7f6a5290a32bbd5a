// Passkeys for clients: make one after a link sign-in, sign in with one on /sign-in.
// Everything here is an addition: without JavaScript or WebAuthn the buttons stay hidden and
// the email link and code work as they always do. The server keeps the challenges and checks
// every answer (practice/passkeys.py); this only carries them to the browser and back.
(function () {
  "use strict";

  var supported = !!(window.PublicKeyCredential && navigator.credentials && window.fetch);

  // What the passkey widgets say, in the page's language: their templates pass it (data-text),
  // since the CSP allows no inline script. English stays here for a page without it.
  var words = {};
  document.querySelectorAll("[data-passkey-text]").forEach(function (element) {
    try {
      Object.assign(words, JSON.parse(element.dataset.passkeyText || "{}"));
    } catch (error) {
      // the English below
    }
  });
  function t(key, english) {
    return words[key] || english;
  }

  function toBytes(base64url) {
    var base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    var padded = base64 + "===".slice((base64.length + 3) % 4);
    var binary = atob(padded);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map(function (item) {
      return { type: item.type, id: toBytes(item.id), transports: item.transports };
    });
  }

  // A credential as py_webauthn reads it: its binary parts in base64url.
  function asJSON(credential, response) {
    response.clientDataJSON = toBase64url(credential.response.clientDataJSON);
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: response,
    };
  }

  function post(url, csrf, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) throw new Error(data.error || t("failed", "Something went wrong. Please try again."));
        return data;
      });
    });
  }

  function say(element, text, isError) {
    var status = element.querySelector("[data-passkey-status]");
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("error", !!isError);
  }

  function register(element) {
    var csrf = element.dataset.csrf;
    return post(element.dataset.optionsUrl, csrf).then(function (options) {
      options.challenge = toBytes(options.challenge);
      options.user.id = toBytes(options.user.id);
      options.excludeCredentials = withIds(options.excludeCredentials);
      return navigator.credentials.create({ publicKey: options });
    }).then(function (credential) {
      var response = credential.response;
      return post(element.dataset.url, csrf, asJSON(credential, {
        attestationObject: toBase64url(response.attestationObject),
        transports: response.getTransports ? response.getTransports() : [],
      }));
    });
  }

  function authenticate(element, mediation, signal) {
    var csrf = element.dataset.csrf;
    return post(element.dataset.optionsUrl, csrf).then(function (options) {
      options.challenge = toBytes(options.challenge);
      options.allowCredentials = withIds(options.allowCredentials);
      var request = { publicKey: options };
      if (mediation) request.mediation = mediation;
      if (signal) request.signal = signal;
      return navigator.credentials.get(request);
    }).then(function (credential) {
      var response = credential.response;
      return post(element.dataset.url, csrf, asJSON(credential, {
        authenticatorData: toBase64url(response.authenticatorData),
        signature: toBase64url(response.signature),
        userHandle: response.userHandle ? toBase64url(response.userHandle) : undefined,
      }));
    }).then(function (data) {
      window.location.assign(data.redirect);
    });
  }

  // The person closed the browser's dialog (or another request replaced this one): not an error.
  function cancelled(error) {
    return error && (error.name === "NotAllowedError" || error.name === "AbortError");
  }

  function setUpRegistration(element) {
    var button = element.querySelector("[data-passkey-register]");
    var canMake = PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable
      ? PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable() : Promise.resolve(true);
    canMake.then(function (available) {
      if (!available) return;
      element.hidden = false;
      button.addEventListener("click", function () {
        button.disabled = true;
        say(element, t("follow", "Follow your device's instructions…"));
        register(element).then(function (data) {
          if (data.redirect) {  // a clinician's second factor: on to the next step
            window.location.assign(data.redirect);
            return;
          }
          if (element.dataset.after === "reload") {
            window.location.reload();
            return;
          }
          say(element, data.message);
          button.hidden = true;
          var dismiss = element.querySelector("[data-passkey-dismiss]");
          if (dismiss) dismiss.hidden = true;
        }).catch(function (error) {
          button.disabled = false;
          if (error && error.name === "InvalidStateError") {
            say(element, t("already", "This device already has a passkey for this portal."));
          } else {
            say(element, cancelled(error) ? t("not_made", "No passkey was made. You can try again.") : error.message, !cancelled(error));
          }
        });
      });
    }).catch(function () {});
  }

  function setUpSignIn(element) {
    var button = element.querySelector("[data-passkey-sign-in]");
    var field = document.querySelector("input[autocomplete~='webauthn']");
    var autofill = null;

    function offerAutofill() {
      if (!field || !PublicKeyCredential.isConditionalMediationAvailable) return;
      PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (!available) return;
        autofill = new AbortController();
        authenticate(element, "conditional", autofill.signal).catch(function (error) {
          if (cancelled(error)) return;
          say(element, error.message, true);
          offerAutofill();  // a fresh challenge for the next try
        });
      }).catch(function () {});
    }

    element.hidden = false;
    button.addEventListener("click", function () {
      if (autofill) autofill.abort();  // one WebAuthn request at a time
      button.disabled = true;
      say(element, "");
      authenticate(element).catch(function (error) {
        button.disabled = false;
        if (!cancelled(error)) say(element, error.message, true);
        offerAutofill();
      });
    });
    offerAutofill();
  }

  if (!supported) return;
  document.querySelectorAll("[data-passkey-offer]").forEach(setUpRegistration);
  document.querySelectorAll("[data-passkey-signin]").forEach(setUpSignIn);
})();
