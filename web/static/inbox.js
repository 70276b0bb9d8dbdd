// The confirmations inbox: the pending actions the signed-in user may
// confirm, as the server decides (GET /api/v1/actions?approvable=true),
// reloaded whenever the server's event stream (/api/v1/actions/events)
// says one of them moved or the policy changed. Approve and cancel are the
// API's confirm and cancel; a refusal shows on the card.
import { html, Component, api, t, boot, Alert } from './lib.js';

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
    this.state = { actions: null, error: null, cardError: {}, now: Date.now(), live: false };
  }
  componentDidMount() {
    this.load();
    // The browser reconnects an EventSource by itself; every (re)connect
    // starts with "ready", after which the list is read afresh.
    this.events = new EventSource('/api/v1/actions/events');
    for (const name of ['ready', 'action', 'resync']) this.events.addEventListener(name, () => this.changed(name));
    this.events.onerror = () => this.setState({ live: false });
    this.tick = setInterval(() => this.setState({ now: Date.now() }), 1000);
  }
  componentWillUnmount() {
    this.events.close();
    clearInterval(this.tick);
    clearTimeout(this.pending);
  }
  // changed reloads the list soon after an event, once for a burst.
  changed(name) {
    if (name === 'ready') this.setState({ live: true });
    clearTimeout(this.pending);
    this.pending = setTimeout(() => this.load(), 100);
  }
  async load() {
    try {
      const page = await api('GET', '/api/v1/actions?approvable=true');
      this.setState({ actions: page.actions || [], error: null });
    } catch (e) {
      this.setState({ error: e });
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
  render(_, { actions, error, cardError, now, live }) {
    return html`<div class="inbox" data-live=${live ? 'true' : 'false'}>
      <p class="hint" id="inbox-live">${t(live ? 'web.inbox.live' : 'web.inbox.offline')}</p>
      <${Alert} error=${error} />
      ${actions && actions.length === 0 && html`<p class="notice" id="inbox-empty">${t('web.inbox.empty')}</p>`}
      <ul class="cards" id="inbox-list">${(actions || []).map((a) => {
        const thread = (a.idempotency_key || '').startsWith('chat:') ? a.idempotency_key.split(':')[1] : '';
        const remaining = left(a.expires_at, now);
        return html`<li class="card" id=${'pending-' + a.id}>
          <h2>${a.action}</h2>
          <dl>
            <dt>${t('web.tenant')}</dt><dd>${a.tenant}</dd>
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
