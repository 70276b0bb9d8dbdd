// Shared by every page: the boot data, messages, and the API client. The
// session cookie authenticates; state-changing calls carry the CSRF token.
import { h, render, Component } from './vendor/preact.mjs';
import htm from './vendor/htm.mjs';

export const html = htm.bind(h);
export { render, Component };

export const boot = JSON.parse(document.getElementById('boot').textContent);

// t is message id in the page's language with {name} placeholders filled.
export function t(id, vars) {
  let s = boot.messages[id] ?? id;
  for (const [k, v] of Object.entries(vars || {})) s = s.replaceAll('{' + k + '}', String(v));
  return s;
}

// APIError is a refused call: the server's code, reason and localized message.
export class APIError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || t('web.error.network'));
    this.status = status;
    this.code = e.code || '';
    this.reason = e.reason || '';
  }
}

// api calls the API as the signed-in user; tenant, when set, is X-Tenant-ID.
export async function api(method, path, body, tenant) {
  const headers = { 'Accept': 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = boot.csrf;
  if (tenant) headers['X-Tenant-ID'] = tenant;
  const init = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new APIError(0, null);
  }
  if (res.status === 401) {
    location.assign('/signin?expired=1');
    throw new APIError(401, null);
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) throw new APIError(res.status, data);
  return data;
}

// Alert shows a refusal inline.
export function Alert({ error }) {
  if (!error) return null;
  return html`<p class="alert" role="alert">${error.message}</p>`;
}

// q builds a query string from the set values of params.
export function q(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== undefined && v !== null) u.set(k, v);
  const s = u.toString();
  return s ? '?' + s : '';
}

// TenantPicker chooses among the tenants the user may see.
export class TenantPicker extends Component {
  constructor(props) {
    super(props);
    this.state = { tenants: [] };
  }
  async componentDidMount() {
    try {
      const list = await api('GET', '/api/v1/tenants');
      this.setState({ tenants: list.items || [] });
    } catch {
      this.setState({ tenants: [{ id: this.props.value }] });
    }
  }
  render({ value, onChange, id }, { tenants }) {
    return html`<label class="picker" for=${id}>${t('web.tenant')}
      <select id=${id} value=${value} onChange=${(e) => onChange(e.target.value)}>
        ${tenants.map((tn) => html`<option value=${tn.id}>${tn.name ? tn.name + ' (' + tn.id + ')' : tn.id}</option>`)}
      </select></label>`;
  }
}
