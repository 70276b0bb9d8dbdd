// Seed 004's action settings for one tenant: toggles, limits, inherited
// values and ceilings as /api/v1/permissions reports them, usage of the
// windowed limits, and a panel that asks /api/v1/explain for a decision.
import { html, Component, api, t, boot, Alert, TenantPicker } from './lib.js';

// source says where a value comes from, relative to the tenant shown.
function source(from, tenant) {
  if (from === 'tenant:' + tenant) return html`<span class="source own">${t('web.settings.set_here')}</span>`;
  if (from === 'default') return html`<span class="source">${t('web.settings.from_default')}</span>`;
  return html`<span class="source inherited">${t('web.settings.inherited', { source: from.replace(/^tenant:/, '') })}</span>`;
}

const limitTypes = ['max_amount', 'max_percentage', 'max_count', 'max_total_amount'];

// validateLimit returns the message id of what is wrong with a limit form, or ''.
export function validateLimit({ type, value, currency, window }) {
  const v = String(value).trim();
  if (type === 'max_count') {
    if (!/^[1-9][0-9]*$/.test(v)) return 'web.settings.invalid_count';
  } else if (!/^[0-9]+(\.[0-9]+)?$/.test(v) || Number(v) <= 0) {
    return 'web.settings.invalid_value';
  }
  if (type === 'max_percentage' && Number(v) > 100) return 'web.settings.invalid_percentage';
  if ((type === 'max_amount' || type === 'max_total_amount') && currency && !/^[A-Za-z]{3}$/.test(currency)) return 'web.settings.invalid_currency';
  if ((type === 'max_count' || type === 'max_total_amount') && window && !/^[0-9]+(h|m)$/.test(window)) return 'web.settings.invalid_window';
  return '';
}

export default class Settings extends Component {
  constructor() {
    super();
    this.state = { tenant: boot.tenant, rows: null, limits: [], usage: [], error: null, rowError: {} };
  }
  componentDidMount() { this.load(); }
  async load(tenant = this.state.tenant) {
    try {
      const [rows, limits, usage] = await Promise.all([
        api('GET', '/api/v1/permissions', undefined, tenant),
        api('GET', '/api/v1/permissions/limits', undefined, tenant),
        api('GET', '/api/v1/permissions/usage', undefined, tenant)]);
      this.setState({ tenant, rows, limits, usage, error: null });
    } catch (e) {
      this.setState({ tenant, rows: null, error: e });
    }
  }
  // change runs one API call for action and reloads; a refusal shows on its row.
  async change(action, fn) {
    try {
      await fn();
      this.setState({ rowError: { ...this.state.rowError, [action]: null } });
      await this.load();
    } catch (e) {
      this.setState({ rowError: { ...this.state.rowError, [action]: e } });
    }
  }
  set(row, field, value) {
    this.change(row.action_type, () => api('PUT', '/api/v1/permissions/' + row.action_type, { [field]: value }, this.state.tenant));
  }
  render(_, { tenant, rows, limits, usage, error, rowError }) {
    return html`<div class="settings">
      <${TenantPicker} id="settings-tenant" value=${tenant} onChange=${(v) => this.load(v)} />
      <${Alert} error=${error} />
      ${rows && html`<ul class="actions-list">${rows.map((row) => html`<${ActionRow} row=${row} tenant=${tenant}
        limits=${limits.filter((l) => l.action_type === row.action_type)}
        usage=${usage.find((u) => u.action === row.action_type)} error=${rowError[row.action_type]}
        onSet=${(f, v) => this.set(row, f, v)}
        onOverride=${() => this.change(row.action_type, () => api('PUT', '/api/v1/permissions/' + row.action_type,
          { enabled: row.enabled, requires_confirmation: row.requires_confirmation }, tenant))}
        onInherit=${() => this.change(row.action_type, () => api('DELETE', '/api/v1/permissions/' + row.action_type, undefined, tenant))}
        onLimit=${(body) => this.change(row.action_type, () => api('POST', '/api/v1/permissions/limits', body, tenant))}
        onDeleteLimit=${(type) => this.change(row.action_type, () => api('DELETE',
          '/api/v1/permissions/limits/' + row.action_type + '/' + type, undefined, tenant))} />`)}</ul>`}
      ${rows && html`<${Simulate} tenant=${tenant} actions=${rows.map((r) => r.action_type)} />`}
    </div>`;
  }
}

function Toggle({ id, label, checked, locked, onChange }) {
  return html`<label class="switch" for=${id}><input type="checkbox" role="switch" id=${id} checked=${checked}
    disabled=${locked} onChange=${(e) => onChange(e.target.checked)} /> ${label}</label>`;
}

function Usage({ usage }) {
  if (!usage) return null;
  const bar = (used, max, text) => html`<div class="usage"><progress max=${max} value=${Math.min(used, max)}
    aria-label=${text}></progress> <span>${text}</span></div>`;
  return html`<div class="usage-list">
    ${usage.max_count > 0 && bar(usage.count, usage.max_count,
      t('web.settings.usage_count', { count: usage.count, limit: usage.max_count, window: usage.window }))}
    ${usage.max_total_amount && bar(Number(usage.total), Number(usage.max_total_amount),
      t('web.settings.usage_total', { count: usage.total, limit: usage.max_total_amount + ' ' + usage.currency, window: usage.window }))}
  </div>`;
}

class ActionRow extends Component {
  constructor() {
    super();
    this.state = { type: 'max_amount', value: '', currency: '', window: '', invalid: '' };
  }
  submit(e) {
    e.preventDefault();
    const { type, value, currency, window } = this.state;
    const invalid = validateLimit(this.state);
    this.setState({ invalid });
    if (invalid) return;
    const body = { action_type: this.props.row.action_type, limit_type: type, limit_value: value.trim() };
    if (currency) body.currency = currency.toUpperCase();
    if (window) body.window = window;
    this.props.onLimit(body);
  }
  render({ row, tenant, limits, usage, error, onSet, onOverride, onInherit, onDeleteLimit }, { type, value, currency, window, invalid }) {
    const a = row.action_type;
    const own = row.enabled_from === 'tenant:' + tenant || row.requires_confirmation_from === 'tenant:' + tenant ||
      limits.some((l) => l.source === 'tenant:' + tenant);
    const ceiling = row.ceilings || {};
    const needsCurrency = type === 'max_amount' || type === 'max_total_amount';
    const needsWindow = type === 'max_count' || type === 'max_total_amount';
    return html`<li class="action-row" id=${'action-' + a}>
      <h2>${row.label}</h2><p>${row.description}</p>
      <${Alert} error=${error} />
      <div class="toggles">
        <div><${Toggle} id=${'enabled-' + a} label=${t('web.settings.enabled')} checked=${row.enabled}
          locked=${ceiling.enabled && ceiling.enabled !== 'tenant:' + tenant && !row.enabled} onChange=${(v) => onSet('enabled', v)} />
          ${source(row.enabled_from, tenant)}</div>
        <div><${Toggle} id=${'confirm-' + a} label=${t('web.settings.requires_confirmation')} checked=${row.requires_confirmation}
          locked=${ceiling.requires_confirmation && ceiling.requires_confirmation !== 'tenant:' + tenant && row.requires_confirmation}
          onChange=${(v) => onSet('requires_confirmation', v)} />
          ${source(row.requires_confirmation_from, tenant)}</div>
      </div>
      ${Object.entries(ceiling).map(([part, from]) => html`<p class="ceiling">${t('web.settings.ceiling',
        { part: t('web.settings.part.' + part), source: from.replace(/^tenant:/, '') })}</p>`)}
      <div class="row-actions">
        ${own ? html`<button class="secondary" id=${'inherit-' + a} onClick=${onInherit}>${t('web.settings.inherit')}</button>`
          : html`<button class="secondary" id=${'override-' + a} onClick=${onOverride}>${t('web.settings.override')}</button>`}
      </div>
      ${limits.length > 0 && html`<table class="limits"><caption>${t('web.settings.limits')}</caption>
        <thead><tr><th scope="col">${t('web.settings.limit_type')}</th><th scope="col">${t('web.settings.limit_value')}</th>
        <th scope="col">${t('web.settings.source')}</th><th scope="col"><span class="visually-hidden">${t('web.settings.remove')}</span></th></tr></thead>
        <tbody>${limits.map((l) => html`<tr><td>${t('web.limit.' + l.limit_type)}</td>
          <td>${l.limit_value}${l.currency ? ' ' + l.currency : ''}${l.window ? ' / ' + l.window : ''}</td>
          <td>${source(l.source, tenant)}</td>
          <td><button class="secondary" onClick=${() => onDeleteLimit(l.limit_type)}
            aria-label=${t('web.settings.remove_named', { name: t('web.limit.' + l.limit_type) })}>${t('web.settings.remove')}</button></td></tr>`)}
        </tbody></table>`}
      <${Usage} usage=${usage} />
      <form class="limit-form" onSubmit=${(e) => this.submit(e)} novalidate>
        <label>${t('web.settings.limit_type')}<select id=${'limit-type-' + a} value=${type}
          onChange=${(e) => this.setState({ type: e.target.value, invalid: '' })}>
          ${limitTypes.map((lt) => html`<option value=${lt}>${t('web.limit.' + lt)}</option>`)}</select></label>
        <label>${t('web.settings.limit_value')}<input id=${'limit-value-' + a} inputmode="decimal" value=${value}
          aria-invalid=${invalid ? 'true' : 'false'} aria-describedby=${'limit-error-' + a}
          onInput=${(e) => this.setState({ value: e.target.value, invalid: '' })} /></label>
        ${needsCurrency && html`<label>${t('web.settings.currency')}<input id=${'limit-currency-' + a} size="4" maxlength="3"
          value=${currency} placeholder="EUR" onInput=${(e) => this.setState({ currency: e.target.value })} /></label>`}
        ${needsWindow && html`<label>${t('web.settings.window')}<input id=${'limit-window-' + a} size="5" value=${window}
          placeholder="24h" onInput=${(e) => this.setState({ window: e.target.value })} /></label>`}
        <button type="submit" id=${'limit-save-' + a}>${t('web.settings.set_limit')}</button>
        <p class="field-error" id=${'limit-error-' + a} role="status">${invalid ? t(invalid) : ''}</p>
      </form>
    </li>`;
  }
}

// Simulate asks /api/v1/explain: the decision, its reason and the path
// that decided it, for anyone in the tenant the user administers.
class Simulate extends Component {
  constructor(props) {
    super(props);
    this.state = { subject: 'agent:support-bot', onBehalfOf: '', tool: props.actions[0] || '',
      args: '{"amount": "20.00", "currency": "EUR", "order_id": "1042"}', answer: null, error: null, badArgs: false };
  }
  async run(e) {
    e.preventDefault();
    let args;
    try {
      args = JSON.parse(this.state.args || '{}');
    } catch {
      this.setState({ badArgs: true });
      return;
    }
    const body = { subject: this.state.subject.trim(), tool: this.state.tool, tenant: this.props.tenant, args };
    if (this.state.onBehalfOf.trim()) body.on_behalf_of = this.state.onBehalfOf.trim();
    try {
      this.setState({ answer: await api('POST', '/api/v1/explain', body), error: null, badArgs: false });
    } catch (err) {
      this.setState({ answer: null, error: err, badArgs: false });
    }
  }
  render({ actions }, { subject, onBehalfOf, tool, args, answer, error, badArgs }) {
    return html`<form class="simulate" id="simulate" onSubmit=${(e) => this.run(e)} aria-labelledby="simulate-heading">
      <h2 id="simulate-heading">${t('web.settings.simulate')}</h2>
      <p>${t('web.settings.simulate_hint')}</p>
      <label>${t('web.settings.subject')}<input id="sim-subject" value=${subject} onInput=${(e) => this.setState({ subject: e.target.value })} /></label>
      <label>${t('web.settings.on_behalf_of')}<input id="sim-obo" value=${onBehalfOf} placeholder="user:olga@acme.example"
        onInput=${(e) => this.setState({ onBehalfOf: e.target.value })} /></label>
      <label>${t('web.settings.action')}<select id="sim-tool" value=${tool} onChange=${(e) => this.setState({ tool: e.target.value })}>
        ${actions.map((a) => html`<option value=${a}>${a}</option>`)}</select></label>
      <label>${t('web.settings.args')}<textarea id="sim-args" rows="3" aria-invalid=${badArgs ? 'true' : 'false'}
        onInput=${(e) => this.setState({ args: e.target.value })}>${args}</textarea></label>
      ${badArgs && html`<p class="field-error" role="alert">${t('web.settings.invalid_args')}</p>`}
      <button type="submit" id="sim-run">${t('web.settings.run')}</button>
      <${Alert} error=${error} />
      ${answer && html`<div id="sim-result" role="status">
        <p class=${'verdict ' + (answer.allowed ? 'allowed' : 'denied')}>${answer.allowed ? t('web.decision.allowed') : t('web.decision.denied')}${' · '}<code>${answer.reason}</code></p>
        <p>${answer.message}</p>
        ${answer.limit && html`<p>${t('web.settings.limit_figures', { name: t('web.limit.' + answer.limit.limit),
          count: answer.limit.requested, limit: answer.limit.max })}${answer.limit.used ? ' · ' + t('web.settings.used',
          { count: answer.limit.used, window: answer.limit.window }) : ''}</p>`}
        <ol class="steps">${(answer.steps || []).filter((s) => s.outcome !== 'skip').map((s) => html`<li class=${s.outcome}>
          <strong>${s.rule}</strong> ${t('web.outcome.' + s.outcome)}: ${s.detail}
          ${s.path && html`<div class="source">${s.path.join(' → ')}</div>`}</li>`)}</ol>
      </div>`}
    </form>`;
  }
}
