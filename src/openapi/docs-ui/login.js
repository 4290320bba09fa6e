// The docs' sign-in, served by the gateway as a file (no inline script, no CDN).
// On /docs/login: exchanges the API token for the docs session cookie, then shows
// Swagger UI in place, authorized for "Try it out" with the token held in memory
// only. On the Swagger UI page (/docs): adds a sign-out button.
/* global document, fetch, history, location, SwaggerUIBundle, SwaggerUIStandalonePreset */
(function () {
  'use strict';

  const form = document.getElementById('docs-login-form');
  if (form) form.addEventListener('submit', signIn);
  else document.addEventListener('DOMContentLoaded', addSignOut);

  async function signIn(event) {
    event.preventDefault();
    const input = document.getElementById('docs-token');
    const error = document.getElementById('docs-login-error');
    let token = input.value.trim();
    input.value = '';
    error.hidden = true;
    let res;
    try {
      res = await fetch('/docs/session', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token }),
        credentials: 'same-origin',
      });
    } catch {
      return fail(error, 'The gateway did not answer.');
    }
    if (res.status !== 204) {
      const problem = await res.json().catch(() => ({}));
      return fail(error, problem.detail || `Sign-in refused (HTTP ${res.status}).`);
    }
    document.getElementById('docs-login').hidden = true;
    await load('link', { rel: 'stylesheet', href: '/docs/swagger-ui.css' });
    await load('script', { src: '/docs/swagger-ui-bundle.js' });
    await load('script', { src: '/docs/swagger-ui-standalone-preset.js' });
    history.replaceState(null, '', '/docs');
    const ui = SwaggerUIBundle({
      url: '/docs/openapi.json',
      dom_id: '#swagger-ui',
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      plugins: [SwaggerUIBundle.plugins.DownloadUrl],
      layout: 'StandaloneLayout',
      persistAuthorization: false,
      displayOperationId: true,
      onComplete() {
        ui.preauthorizeApiKey('bearer', token);
        token = null;
      },
    });
    addSignOut();
  }

  function fail(error, message) {
    error.textContent = message;
    error.hidden = false;
  }

  function load(tag, attributes) {
    return new Promise((resolve, reject) => {
      const element = document.createElement(tag);
      Object.assign(element, attributes);
      element.onload = resolve;
      element.onerror = reject;
      document.head.appendChild(element);
    });
  }

  function addSignOut() {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'docs-logout';
    button.textContent = 'Sign out';
    button.addEventListener('click', async () => {
      await fetch('/docs/logout', { method: 'POST', credentials: 'same-origin' }).catch(() => {});
      location.assign('/docs/login');
    });
    document.body.appendChild(button);
  }
})();
