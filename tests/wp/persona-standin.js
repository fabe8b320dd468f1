// Test double of Persona's embedded client (https://cdn.withpersona.com/dist/persona-vX.Y.Z.js).
// Same constructor and callbacks as Persona.Client; records the options it was given in
// window.__personaStandIn and shows them, with buttons that fire onComplete / onCancel.
(function () {
  "use strict";
  function Client(options) {
    var self = this;
    self.options = options || {};
    window.__personaStandIn = {
      templateId: self.options.templateId || null,
      environmentId: self.options.environmentId || null,
      referenceId: self.options.referenceId || null,
      inquiryId: self.options.inquiryId || null,
      sessionToken: self.options.sessionToken || null,
      fields: self.options.fields || {},
      opened: false
    };
    setTimeout(function () { if (self.options.onReady) { self.options.onReady(); } }, 10);
  }
  Client.prototype.open = function () {
    var o = this.options, self = this;
    window.__personaStandIn.opened = true;
    var box = document.createElement("div");
    box.id = "persona-standin";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-label", "Persona (test double)");
    box.style.cssText = "position:fixed;inset:10%;background:#fff;border:3px solid #4b32c3;padding:1em;z-index:100000";
    box.innerHTML = "<h2>Persona embedded flow (test double)</h2>" +
      "<p>template <code id=\"standin-template-id\"></code></p>" +
      "<p>reference <code id=\"standin-reference-id\"></code></p>" +
      "<p>environment <code id=\"standin-environment-id\"></code></p>" +
      "<button type=\"button\" id=\"standin-complete\">Finish (complete)</button> " +
      "<button type=\"button\" id=\"standin-cancel\">Close (cancel)</button>";
    document.body.appendChild(box);
    box.querySelector("#standin-template-id").textContent = o.templateId || "";
    box.querySelector("#standin-reference-id").textContent = o.referenceId || "";
    box.querySelector("#standin-environment-id").textContent = o.environmentId || "";
    box.querySelector("#standin-complete").addEventListener("click", function () {
      box.remove();
      if (o.onComplete) { o.onComplete({ inquiryId: "inq_standin", status: "completed", fields: {} }); }
    });
    box.querySelector("#standin-cancel").addEventListener("click", function () {
      box.remove();
      if (o.onCancel) { o.onCancel({ inquiryId: "inq_standin", sessionToken: null }); }
    });
    self.opened = true;
  };
  Client.prototype.cancel = function () {};
  Client.prototype.destroy = function () {};
  Client.preload = function () {};
  window.Persona = { Client: Client };
})();
