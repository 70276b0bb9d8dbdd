// The confirmations inbox: pending actions as /api/v1/actions lists them
// (a tenant's, for its administrators; else the user's own), refreshed
// every few seconds. Approve and cancel are the API's confirm and cancel;
// the server decides who may, and its refusal shows on the card.
import { html, Component, api, t, boot, Alert, TenantPicker, q } from './lib.js';

// money formats an amount in minor units of currency.
export function money(minor, currency, lang) {
  const f = new Intl.NumberFormat(lang, { style: 'currency', currency });
  return f.format(minor / 10 ** f.resolvedOptions().maximumFractionDigits);
}

// left is the time until at, as m:ss, or '' once it has passed.
function left(at, now) {
  const s = Math.floor((Date.parse(at) - now) / 1000);
  if (!(s > 0)) return '';
  return Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
}

export default class Inbox extends Component {
  constructor() {
    super();
    this.state = { tenant: boot.tenant, actions: null, error: null, cardError: {}, now: Date.now() };
  }
  componentDidMount() {
    this.load();
    this.refresh = setInterval(() => this.load(), 5000);
    this.tick = setInterval(() => this.setState({ now: Date.now() }), 1000);
  }
  componentWillUnmount() {
    clearInterval(this.refresh);
    clearInterval(this.tick);
  }
  async load(tenant = this.state.tenant) {
    try {
      const page = await api('GET', '/api/v1/actions' + q({ status: 'pending', tenant }));
      this.setState({ tenant, actions: page.actions || [], error: null });
    } catch (e) {
      this.setState({ tenant, error: e });
    }
  }
  async step(a, op) {
    try {
      await api('POST', '/api/v1/actions/' + encodeURIComponent(a.id) + '/' + op);
      this.setState({ cardError: { ...this.state.cardError, [a.id]: null } });
      this.load();
    } catch (e) {
      this.setState({ cardError: { ...this.state.cardError, [a.id]: e } });
    }
  }
  render(_, { tenant, actions, error, cardError, now }) {
    return html`<div class="inbox">
      <${TenantPicker} id="inbox-tenant" value=${tenant} onChange=${(v) => this.load(v)} />
      <${Alert} error=${error} />
      ${actions && actions.length === 0 && html`<p class="notice" id="inbox-empty">${t('web.inbox.empty')}</p>`}
      <ul class="cards" id="inbox-list">${(actions || []).map((a) => {
        const thread = (a.idempotency_key || '').startsWith('chat:') ? a.idempotency_key.split(':')[1] : '';
        const remaining = left(a.expires_at, now);
        return html`<li class="card" id=${'pending-' + a.id}>
          <h2>${a.action}</h2>
          <dl>
            ${a.currency && html`<dt>${t('web.inbox.amount')}</dt><dd>${money(a.amount_minor || 0, a.currency, boot.lang)}</dd>`}
            <dt>${t('web.inbox.requester')}</dt><dd>${a.on_behalf_of || a.subject}</dd>
            ${a.on_behalf_of && html`<dt>${t('web.inbox.agent')}</dt><dd>${a.subject}</dd>`}
            <dt>${t('web.inbox.expires')}</dt><dd>${remaining ? t('web.inbox.expires_in', { time: remaining }) : t('web.inbox.expired')}</dd>
            ${thread && html`<dt>${t('web.inbox.conversation')}</dt><dd><a href=${'/chat#' + thread}>${thread}</a></dd>`}
          </dl>
          <${Alert} error=${cardError[a.id]} />
          <div class="actions">
            <button class="approve" disabled=${!remaining} onClick=${() => this.step(a, 'confirm')}>${t('web.inbox.approve')}</button>
            <button class="secondary" onClick=${() => this.step(a, 'cancel')}>${t('web.cancel')}</button>
          </div>
        </li>`;
      })}</ul>
    </div>`;
  }
}
