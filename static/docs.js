// Render the API reference on /docs from this server's own OpenAPI
// document with the vendored Swagger UI (a file, so the page needs no
// inline script under the Content Security Policy).
(function () {
  "use strict";
  var target = document.getElementById("api-reference");
  if (!target || typeof window.SwaggerUIBundle !== "function") {
    return;
  }
  window.SwaggerUIBundle({
    url: target.getAttribute("data-spec-url"),
    dom_id: "#api-reference",
    deepLinking: true,
    // Nothing leaves this server: no online validator badge.
    validatorUrl: null,
    // "Try it out" calls this server with the key the reader enters.
    tryItOutEnabled: false,
    persistAuthorization: false,
    docExpansion: "list",
    defaultModelsExpandDepth: 0
  });
})();
