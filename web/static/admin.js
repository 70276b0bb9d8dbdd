// The administration dashboard: what the signed-in user may administer,
// as the API lists it (a superuser sees all, a tenant admin its subtree).
// Every change is one API call; a refusal shows the server's message.
import { html, Component, api, t, Alert } from './lib.js';

const sections = ['roles', 'users', 'agents', 'tenants', 'plans', 'keys'];

export default class Admin extends Component {
  constructor() {
    super();
    this.state = { section: 'roles', data: null, error: null };
  }
  componentDidMount() { this.load(); }
  async load() {
    try {
      const get = (p) => api('GET', p).then((r) => r.items || []);
      const [roles, bundles, categories, perms, users, agents, tenants, plans, keys] = await Promise.all([
        get('/api/v1/roles'), get('/api/v1/bundles'), get('/api/v1/categories'), get('/api/v1/rbac/permissions'),
        get('/api/v1/users'), get('/api/v1/agents'), get('/api/v1/tenants'), get('/api/v1/plans'), get('/api/v1/api-keys')]);
      this.setState({ data: { roles, bundles, categories, perms, users, agents, tenants, plans, keys }, error: null });
    } catch (e) {
      this.setState({ error: e });
    }
  }
  render(_, { section, data, error }) {
    if (!data) return error ? html`<${Alert} error=${error} />` : html`<p>${t('web.loading')}</p>`;
    const View = { roles: Roles, users: Users, agents: Agents, tenants: Tenants, plans: Plans, keys: Keys }[section];
    return html`<div class="admin">
      <div role="tablist" class="tabs" aria-label=${t('web.title.admin')}>
        ${sections.map((s) => html`<button role="tab" id=${'tab-' + s} aria-selected=${s === section ? 'true' : 'false'}
          aria-controls="admin-panel" class=${s === section ? '' : 'secondary'}
          onClick=${() => this.setState({ section: s })}>${t('web.admin.' + s)}</button>`)}
      </div>
      <section id="admin-panel" role="tabpanel" aria-labelledby=${'tab-' + section}>
        <h2>${t('web.admin.' + section)}</h2>
        <${View} data=${data} reload=${() => this.load()} />
      </section>
    </div>`;
  }
}

// Roles with their bundles, and the permissions of each bundle grouped by
// the category the bundle belongs to.
function Roles({ data }) {
  const bundle = Object.fromEntries(data.bundles.map((b) => [b.name, b]));
  const categoryOf = {};
  for (const c of data.categories) for (const b of c.bundles || []) categoryOf[b] = c.name;
  const title = Object.fromEntries(data.perms.map((p) => [p.name, p.title || p.name]));
  return html`<ul class="cards">${data.roles.map((r) => {
    const byCat = {};
    for (const b of r.bundles || []) (byCat[categoryOf[b] || t('web.admin.uncategorized')] ||= []).push(b);
    return html`<li class="role"><h3>${r.name}</h3>${r.description && html`<p>${r.description}</p>`}
      ${Object.entries(byCat).map(([cat, bs]) => html`<h4>${cat}</h4><ul>${bs.map((b) => html`<li><strong>${b}</strong>:
        ${((bundle[b] || {}).permissions || []).map((p) => title[p] || p).join(', ')}</li>`)}</ul>`)}
      ${(r.permissions || []).length > 0 && html`<p>${t('web.admin.direct')}: ${r.permissions.join(', ')}</p>`}
    </li>`;
  })}</ul>`;
}

class Users extends Component {
  constructor() {
    super();
    this.state = { error: null, editing: null, tenants: [] };
  }
  async call(fn) {
    try {
      await fn();
      this.setState({ error: null, editing: null });
      this.props.reload();
    } catch (e) {
      this.setState({ error: e });
    }
  }
  superuser(u, on) {
    this.call(() => api(on ? 'PUT' : 'DELETE', '/api/v1/users/' + encodeURIComponent(u.email) + '/superuser'));
  }
  saveTenants(u) {
    const entry = { ...u, tenants: this.state.tenants };
    if (entry.tenants.length === 0) delete entry.tenants;
    this.call(() => api('PUT', '/api/v1/users/' + encodeURIComponent(u.email), entry));
  }
  render({ data }, { error, editing, tenants }) {
    return html`<${Alert} error=${error} />
    <table><thead><tr><th scope="col">${t('web.admin.user')}</th><th scope="col">${t('web.admin.roles')}</th>
      <th scope="col">${t('web.admin.tenants')}</th><th scope="col">${t('web.admin.superuser')}</th></tr></thead>
    <tbody>${data.users.map((u) => html`<tr id=${'user-' + u.email}>
      <td>${u.name} <span class="source">${u.email}</span></td>
      <td>${(u.roles || []).map((r) => html`<div>${r.role}${r.tenant ? ' @ ' + r.tenant : ''}</div>`)}</td>
      <td>${editing === u.email
        ? html`<fieldset><legend>${t('web.admin.tenants_exact')}</legend>${data.tenants.map((tn) => html`<label class="switch">
            <input type="checkbox" checked=${tenants.includes(tn.id)} onChange=${(e) => this.setState({
              tenants: e.target.checked ? [...tenants, tn.id] : tenants.filter((x) => x !== tn.id) })} /> ${tn.id}</label>`)}
            <div class="row-actions"><button onClick=${() => this.saveTenants(u)}>${t('web.save')}</button>
            <button class="secondary" onClick=${() => this.setState({ editing: null })}>${t('web.cancel')}</button></div></fieldset>`
        : html`${(u.tenants || []).join(', ') || html`<span class="source">${t('web.admin.default_tenants')}</span>`}
            <button class="secondary" onClick=${() => this.setState({ editing: u.email, tenants: u.tenants || [] })}
              aria-label=${t('web.admin.edit_tenants_of', { user: u.email })}>${t('web.edit')}</button>`}</td>
      <td>${u.superuser
        ? html`<button class="secondary demote" onClick=${() => this.superuser(u, false)}>${t('web.admin.demote')}</button>`
        : html`<button class="secondary promote" onClick=${() => this.superuser(u, true)}>${t('web.admin.promote')}</button>`}</td>
    </tr>`)}</tbody></table>`;
  }
}

function Agents({ data }) {
  return html`<table><thead><tr><th scope="col">${t('web.admin.agent')}</th><th scope="col">${t('web.admin.roles')}</th>
    <th scope="col">${t('web.admin.tenants')}</th></tr></thead><tbody>${data.agents.map((a) => html`<tr>
    <td>${a.name || a.id} <span class="source">${a.id}</span></td>
    <td>${(a.roles || []).map((r) => html`<div>${r.role}${r.tenant ? ' @ ' + r.tenant : ''}</div>`)}</td>
    <td>${(a.tenants || []).join(', ')}</td></tr>`)}</tbody></table>`;
}

// Tenants as a tree: roots are those whose parent is not listed.
function Tenants({ data }) {
  const ids = new Set(data.tenants.map((x) => x.id));
  const children = (p) => data.tenants.filter((x) => (x.parent && ids.has(x.parent) ? x.parent : null) === p);
  const tree = (p) => {
    const kids = children(p);
    return kids.length === 0 ? null : html`<ul class="tree">${kids.map((x) => html`<li>
      <strong>${x.name || x.id}</strong> <span class="source">${x.id}</span>
      ${x.plan ? html` · ${t('web.admin.plan')}: ${x.plan}` : html` <span class="source">${t('web.admin.plan_inherited')}</span>`}
      ${tree(x.id)}</li>`)}</ul>`;
  };
  return tree(null);
}

function Plans({ data }) {
  return html`<ol class="cards">${data.plans.map((p) => html`<li><h3>${p.name}</h3>${p.description && html`<p>${p.description}</p>`}
    <p>${(p.features || []).join(', ') || t('web.admin.no_features')}</p></li>`)}</ol>`;
}

class Keys extends Component {
  constructor() {
    super();
    this.state = { error: null, token: '', name: '', subject: '', scopes: ['check'] };
  }
  async create(e) {
    e.preventDefault();
    const { name, subject, scopes } = this.state;
    try {
      const r = await api('POST', '/api/v1/api-keys', { name, subject, scopes });
      this.setState({ token: r.token, error: null, name: '' });
      this.props.reload();
    } catch (err) {
      this.setState({ error: err, token: '' });
    }
  }
  async revoke(k) {
    try {
      await api('DELETE', '/api/v1/api-keys/' + encodeURIComponent(k.id));
      this.props.reload();
    } catch (err) {
      this.setState({ error: err });
    }
  }
  render({ data }, { error, token, name, subject, scopes }) {
    const scope = (s) => html`<label class="switch"><input type="checkbox" checked=${scopes.includes(s)}
      onChange=${(e) => this.setState({ scopes: e.target.checked ? [...scopes, s] : scopes.filter((x) => x !== s) })} /> ${s}</label>`;
    return html`<${Alert} error=${error} />
    ${token && html`<div class="notice" role="status" id="new-key"><p>${t('web.admin.key_once')}</p><code>${token}</code></div>`}
    <form class="limit-form" onSubmit=${(e) => this.create(e)}>
      <label>${t('web.admin.key_name')}<input id="key-name" required value=${name} onInput=${(e) => this.setState({ name: e.target.value })} /></label>
      <label>${t('web.admin.key_subject')}<input id="key-subject" required placeholder="agent:support-bot" value=${subject}
        onInput=${(e) => this.setState({ subject: e.target.value })} /></label>
      <fieldset><legend>${t('web.admin.scopes')}</legend>${['authzen', 'check', 'admin', 'mcp', 'chat'].map(scope)}</fieldset>
      <button type="submit">${t('web.admin.key_create')}</button>
    </form>
    <table><thead><tr><th scope="col">${t('web.admin.key_name')}</th><th scope="col">${t('web.admin.key_subject')}</th>
      <th scope="col">${t('web.admin.scopes')}</th><th scope="col">${t('web.admin.status')}</th></tr></thead>
    <tbody>${data.keys.map((k) => html`<tr><td>${k.name}</td><td>${k.subject.type}:${k.subject.id}</td><td>${k.scopes.join(', ')}</td>
      <td>${k.revoked_at ? t('web.admin.revoked') : html`<button class="secondary" onClick=${() => this.revoke(k)}
        aria-label=${t('web.admin.revoke_named', { name: k.name })}>${t('web.admin.revoke')}</button>`}</td></tr>`)}</tbody></table>`;
  }
}
