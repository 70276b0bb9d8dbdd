// The audit view: /api/v1/audit with filters and cursor pages, each
// change's before and after side by side, and the chain's verification
// from /api/v1/audit/verify.
import { html, Component, api, t, Alert, q } from './lib.js';

const pageSize = 50;

// diff lists the top-level fields that differ between before and after.
export function diff(before, after) {
  const b = before || {}, a = after || {};
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])].sort();
  return keys.filter((k) => JSON.stringify(b[k]) !== JSON.stringify(a[k]))
    .map((k) => ({ key: k, before: b[k], after: a[k] }));
}

const show = (v) => (v === undefined ? '—' : JSON.stringify(v));

export default class Audit extends Component {
  constructor() {
    super();
    this.state = { filter: { actor: '', action: '', target: '', since: '', until: '' }, cursors: [0], events: null,
      next: 0, error: null, chain: null, chainError: null };
  }
  componentDidMount() {
    this.load(0);
    api('GET', '/api/v1/audit/verify').then((chain) => this.setState({ chain }), (e) => this.setState({ chainError: e }));
  }
  async load(after, cursors = this.state.cursors) {
    const f = this.state.filter;
    const iso = (v) => (v ? new Date(v).toISOString() : '');
    try {
      const page = await api('GET', '/api/v1/audit' + q({ actor: f.actor, action: f.action, target: f.target,
        since: iso(f.since), until: iso(f.until), after, limit: pageSize }));
      this.setState({ events: page.events || [], next: page.next, cursors, error: null });
    } catch (e) {
      this.setState({ error: e });
    }
  }
  field(name, type = 'text') {
    return html`<label>${t('web.audit.' + name)}<input id=${'audit-' + name} type=${type} value=${this.state.filter[name]}
      onInput=${(e) => this.setState({ filter: { ...this.state.filter, [name]: e.target.value } })} /></label>`;
  }
  render(_, { events, next, cursors, error, chain, chainError }) {
    return html`<div class="audit">
      <section class="notice" id="chain-status" aria-labelledby="chain-heading"><h2 id="chain-heading">${t('web.audit.chain')}</h2>
        ${chain && html`<p class="verdict allowed">${t('web.audit.verified', { count: chain.events })}</p>
          ${chain.last_checkpoint ? html`<p>${t('web.audit.checkpoint', { count: chain.last_checkpoint.seq,
            time: new Date(chain.last_checkpoint.time).toLocaleString() })}</p>` : html`<p>${t('web.audit.no_checkpoint')}</p>`}`}
        ${chainError && html`<p class="verdict denied">${t('web.audit.not_verified')}</p><${Alert} error=${chainError} />`}
      </section>
      <form class="limit-form" id="audit-filter" onSubmit=${(e) => { e.preventDefault(); this.load(0, [0]); }}>
        ${this.field('actor')}${this.field('action')}${this.field('target')}
        ${this.field('since', 'datetime-local')}${this.field('until', 'datetime-local')}
        <button type="submit">${t('web.audit.filter')}</button>
      </form>
      <${Alert} error=${error} />
      ${events && html`<table id="audit-events"><thead><tr><th scope="col">#</th><th scope="col">${t('web.audit.time')}</th>
        <th scope="col">${t('web.audit.actor')}</th><th scope="col">${t('web.audit.action')}</th><th scope="col">${t('web.audit.target')}</th>
        <th scope="col">${t('web.audit.change')}</th></tr></thead>
        <tbody>${events.map((ev) => html`<tr><td>${ev.seq}</td><td>${new Date(ev.time).toLocaleString()}</td><td>${ev.actor}</td>
          <td>${ev.action}</td><td>${ev.target}</td><td>${(ev.before || ev.after) ? html`<details><summary>${t('web.audit.diff')}</summary>
            <table class="diff"><thead><tr><th scope="col">${t('web.audit.field')}</th><th scope="col">${t('web.audit.before')}</th>
            <th scope="col">${t('web.audit.after')}</th></tr></thead><tbody>${diff(ev.before, ev.after).map((d) => html`<tr>
            <td>${d.key}</td><td><code>${show(d.before)}</code></td><td><code>${show(d.after)}</code></td></tr>`)}</tbody></table></details>`
            : ev.detail ? html`<code class="source">${JSON.stringify(ev.detail).slice(0, 160)}</code>` : ''}</td></tr>`)}</tbody></table>
        ${events.length === 0 && html`<p>${t('web.audit.none')}</p>`}
        <nav class="row-actions" aria-label=${t('web.audit.pages')}>
          <button class="secondary" disabled=${cursors.length < 2} onClick=${() => {
            const c = cursors.slice(0, -1); this.load(c[c.length - 1], c); }}>${t('web.audit.previous')}</button>
          <button class="secondary" id="audit-next" disabled=${!next} onClick=${() => this.load(next, [...cursors, next])}>${t('web.audit.next')}</button>
        </nav>`}
    </div>`;
  }
}
