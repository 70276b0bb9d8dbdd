// The audit view: /api/v1/audit with filters and cursor pages, each
// change's before and after side by side, the chain's verification from
// /api/v1/audit/verify, and a chart of the decisions over time by reason
// (inline SVG drawn from the listed "decision" events, with a table of the
// same figures).
import { html, Component, api, t, boot, Alert, q } from './lib.js';

const pageSize = 50;
// chartMax is the most decisions the chart reads for one period.
const chartMax = 1000;
const day = 24 * 3600 * 1000;
// bucketSizes are the bar widths the chart picks from: the smallest that
// needs at most maxBuckets bars.
const bucketSizes = [60e3, 5 * 60e3, 15 * 60e3, 3600e3, 3 * 3600e3, 6 * 3600e3, day, 7 * day];
const maxBuckets = 24;
// palette: distinct colours with at least 3:1 contrast on white.
const palette = ['#1d6b35', '#a11d2b', '#0b5cad', '#7a4b00', '#6a3d9a', '#00707a', '#b3367a', '#4a5360'];

// buckets counts decisions ({time, reason}) per bar and reason between
// from and to (ms); it returns the bars and the reasons, sorted.
export function buckets(decisions, from, to) {
  const size = bucketSizes.find((b) => (to - from) / b <= maxBuckets) || bucketSizes[bucketSizes.length - 1];
  const start = Math.floor(from / size) * size;
  const n = Math.max(1, Math.ceil((to - start) / size));
  const bars = Array.from({ length: n }, (_, i) => ({ start: start + i * size, counts: {}, total: 0 }));
  const reasons = new Set();
  for (const d of decisions) {
    const i = Math.floor((d.time - start) / size);
    if (i < 0 || i >= n) continue;
    bars[i].counts[d.reason] = (bars[i].counts[d.reason] || 0) + 1;
    bars[i].total++;
    reasons.add(d.reason);
  }
  return { bars, reasons: [...reasons].sort(), size };
}

const stamp = (ms, size) => new Date(ms).toLocaleString(boot.lang, size >= day
  ? { dateStyle: 'short' } : { dateStyle: 'short', timeStyle: 'short' });

// Chart draws the decisions as stacked bars by reason, with a title and a
// description for assistive technology and the figures as a table.
export function Chart({ decisions, from, to, truncated }) {
  const { bars, reasons, size } = buckets(decisions, from, to);
  const colour = (r) => palette[reasons.indexOf(r) % palette.length];
  const W = 720, H = 220, left = 40, bottom = 28, top = 8;
  const max = Math.max(1, ...bars.map((b) => b.total));
  const bw = (W - left) / bars.length;
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  const totals = reasons.map((r) => r + ' ' + decisions.filter((d) => d.reason === r).length).join(', ');
  const desc = t('web.audit.chart_desc', { count: decisions.length, from: stamp(from, 0), to: stamp(to, 0) }) +
    (totals ? ' ' + totals + '.' : '');
  const every = Math.ceil(bars.length / 6);
  return html`<section class="chart" id="decision-chart" aria-labelledby="chart-heading">
    <h2 id="chart-heading">${t('web.audit.chart')}</h2>
    ${truncated && html`<p class="hint">${t('web.audit.chart_truncated', { count: decisions.length })}</p>`}
    ${decisions.length === 0 ? html`<p id="chart-none">${t('web.audit.chart_none')}</p>` : html`
    <svg viewBox=${'0 0 ' + W + ' ' + H} role="img" aria-labelledby="chart-title chart-desc" class="chart-svg">
      <title id="chart-title">${t('web.audit.chart')}</title>
      <desc id="chart-desc">${desc}</desc>
      <line x1=${left} y1=${y(0)} x2=${W} y2=${y(0)} stroke="#4a5360" />
      <text x=${left - 4} y=${y(max) + 10} text-anchor="end" font-size="12" fill="#1b1f24">${max}</text>
      <text x=${left - 4} y=${y(0)} text-anchor="end" font-size="12" fill="#1b1f24">0</text>
      ${bars.map((b, i) => {
        let acc = 0;
        return html`<g>${reasons.filter((r) => b.counts[r]).map((r) => {
          const y0 = y(acc), y1 = y(acc + b.counts[r]);
          acc += b.counts[r];
          return html`<rect x=${left + i * bw + 1} y=${y1} width=${Math.max(1, bw - 2)} height=${y0 - y1} fill=${colour(r)}
            data-reason=${r}><title>${stamp(b.start, size) + ': ' + r + ' ' + b.counts[r]}</title></rect>`;
        })}${i % every === 0 && html`<text x=${left + i * bw + 2} y=${H - 8} font-size="11" fill="#1b1f24">${stamp(b.start, size)}</text>`}</g>`;
      })}
    </svg>
    <ul class="legend" id="chart-legend">${reasons.map((r) => html`<li><svg width="12" height="12" aria-hidden="true" focusable="false">
      <rect width="12" height="12" fill=${colour(r)} /></svg> <code>${r}</code></li>`)}</ul>
    <details><summary>${t('web.audit.chart_table')}</summary>
      <table id="chart-table"><caption class="visually-hidden">${t('web.audit.chart')}</caption>
        <thead><tr><th scope="col">${t('web.audit.chart_period')}</th>${reasons.map((r) => html`<th scope="col">${r}</th>`)}
          <th scope="col">${t('web.audit.chart_total')}</th></tr></thead>
        <tbody>${bars.filter((b) => b.total).map((b) => html`<tr><th scope="row">${stamp(b.start, size)}</th>
          ${reasons.map((r) => html`<td>${b.counts[r] || 0}</td>`)}<td>${b.total}</td></tr>`)}</tbody>
      </table>
    </details>`}
  </section>`;
}

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
    this.state = { filter: { actor: '', action: '', target: '', kind: '', reason: '', since: '', until: '' }, cursors: [0], events: null,
      next: 0, error: null, chain: null, chainError: null, chart: null, chartError: null };
  }
  componentDidMount() {
    this.load(0);
    this.loadChart();
    api('GET', '/api/v1/audit/verify').then((chain) => this.setState({ chain }), (e) => this.setState({ chainError: e }));
  }
  async load(after, cursors = this.state.cursors) {
    const f = this.state.filter;
    const iso = (v) => (v ? new Date(v).toISOString() : '');
    try {
      const page = await api('GET', '/api/v1/audit' + q({ actor: f.actor, action: f.action, target: f.target,
        kind: f.kind, reason: f.reason, since: iso(f.since), until: iso(f.until), after, limit: pageSize }));
      this.setState({ events: page.events || [], next: page.next, cursors, error: null });
    } catch (e) {
      this.setState({ error: e });
    }
  }
  // loadChart reads the decisions the filter selects in its period (the
  // last 24 hours without one) for the chart; a filter for changes selects
  // none.
  async loadChart() {
    const f = this.state.filter;
    const to = f.until ? Date.parse(f.until) : Date.now();
    const from = f.since ? Date.parse(f.since) : to - day;
    if (f.kind === 'change') {
      this.setState({ chart: { decisions: [], from, to, truncated: false }, chartError: null });
      return;
    }
    try {
      const page = await api('GET', '/api/v1/audit' + q({ kind: 'decision', action: f.action, actor: f.actor, target: f.target,
        reason: f.reason, since: new Date(from).toISOString(), until: f.until ? new Date(to).toISOString() : '', limit: chartMax }));
      const decisions = (page.events || []).map((ev) => ({ time: Date.parse(ev.time), reason: (ev.detail && ev.detail.reason) || '?' }));
      this.setState({ chart: { decisions, from, to, truncated: decisions.length === chartMax }, chartError: null });
    } catch (e) {
      this.setState({ chartError: e });
    }
  }
  field(name, type = 'text') {
    return html`<label>${t('web.audit.' + name)}<input id=${'audit-' + name} type=${type} value=${this.state.filter[name]}
      onInput=${(e) => this.setState({ filter: { ...this.state.filter, [name]: e.target.value } })} /></label>`;
  }
  kindField() {
    return html`<label>${t('web.audit.kind')}<select id="audit-kind" value=${this.state.filter.kind}
      onChange=${(e) => this.setState({ filter: { ...this.state.filter, kind: e.target.value } })}>
      <option value="">${t('web.audit.kind_all')}</option>
      <option value="decision">${t('web.audit.kind_decision')}</option>
      <option value="change">${t('web.audit.kind_change')}</option></select></label>`;
  }
  render(_, { events, next, cursors, error, chain, chainError, chart, chartError }) {
    return html`<div class="audit">
      <section class="notice" id="chain-status" aria-labelledby="chain-heading"><h2 id="chain-heading">${t('web.audit.chain')}</h2>
        ${chain && html`<p class="verdict allowed">${t('web.audit.verified', { count: chain.events })}</p>
          ${chain.last_checkpoint ? html`<p>${t('web.audit.checkpoint', { count: chain.last_checkpoint.seq,
            time: new Date(chain.last_checkpoint.time).toLocaleString() })}</p>` : html`<p>${t('web.audit.no_checkpoint')}</p>`}`}
        ${chainError && html`<p class="verdict denied">${t('web.audit.not_verified')}</p><${Alert} error=${chainError} />`}
      </section>
      <form class="limit-form" id="audit-filter" onSubmit=${(e) => { e.preventDefault(); this.load(0, [0]); this.loadChart(); }}>
        ${this.field('actor')}${this.field('action')}${this.field('target')}${this.kindField()}${this.field('reason')}
        ${this.field('since', 'datetime-local')}${this.field('until', 'datetime-local')}
        <button type="submit">${t('web.audit.filter')}</button>
      </form>
      ${chart && html`<${Chart} ...${chart} />`}
      <${Alert} error=${chartError} />
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
