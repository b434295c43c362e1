// The API docs' start-up (served at /docs/init.js by docs.py beside it): Swagger UI,
// from the installed swagger-ui-py package, on our own origin. A file rather than an
// inline script, so the docs page works under the CSP's script-src 'self'.
"use strict";
(() => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
