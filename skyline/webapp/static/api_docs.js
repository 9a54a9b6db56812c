// /api/docs: Swagger UI over the OpenAPI document.  No inline script (CSP): the page's
// data attributes give the document's URL and the session's CSRF token, which "Try it
// out" sends with every change made under the login session.
"use strict";

window.addEventListener("DOMContentLoaded", function () {
  var el = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    url: el.dataset.url,
    domNode: el,
    deepLinking: true,
    validatorUrl: null,
    tryItOutEnabled: false,
    requestInterceptor: function (req) {
      req.headers["X-CSRF-Token"] = el.dataset.csrf;
      return req;
    },
  });
  el.dataset.ready = "1";
});
