// Sign in: a user name and password (a session cookie), or an API token.

import { ApiError, login, loginWithToken } from '../api';
import { h } from '../dom';
import type { PageFn } from '../router';

export const loginPage: PageFn = (root, ctx) => {
  const next = ctx.query.get('next') ?? '/';
  const err = h('p', { class: 'error', role: 'alert', hidden: true });
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, id: 'login-user' });
  const pass = h('input', {
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
    id: 'login-pass',
  });
  const token = h('input', { name: 'token', type: 'password', autocomplete: 'off', id: 'login-token', required: true });
  const fail = (e: unknown) => {
    err.textContent =
      e instanceof ApiError && e.status === 401
        ? 'Wrong user name or password.'
        : e instanceof ApiError && e.status === 404
          ? 'This server has no user sign-in; use an API token.'
          : e instanceof Error
            ? e.message
            : String(e);
    err.hidden = false;
  };
  const done = () => window.dispatchEvent(new CustomEvent('simguard:signed-in', { detail: next }));
  const form = h(
    'form',
    {
      class: 'login-form',
      onsubmit: async (ev: SubmitEvent) => {
        ev.preventDefault();
        err.hidden = true;
        try {
          await login(user.value.trim(), pass.value);
          done();
        } catch (e) {
          fail(e);
        }
      },
    },
    h('label', { class: 'field' }, h('span', null, 'User name'), user),
    h('label', { class: 'field' }, h('span', null, 'Password'), pass),
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
  );
  const tokenForm = h(
    'form',
    {
      class: 'login-form',
      onsubmit: async (ev: SubmitEvent) => {
        ev.preventDefault();
        err.hidden = true;
        try {
          await loginWithToken(token.value.trim());
          done();
        } catch (e) {
          fail(e instanceof ApiError && e.status === 401 ? new Error('That token is not valid.') : e);
        }
      },
    },
    h('label', { class: 'field' }, h('span', null, 'API token'), token),
    h('button', { type: 'submit' }, 'Sign in with token'),
  );
  root.append(
    h(
      'div',
      { class: 'login' },
      h('h1', null, h('img', { src: '/favicon.svg', alt: '', width: 32, height: 32 }), ' simguard'),
      h('p', { class: 'muted' }, 'IoT connectivity security console'),
      form,
      err,
      h('details', { class: 'token-login' }, h('summary', null, 'Sign in with an API token instead'), tokenForm),
    ),
  );
  user.focus();
};
