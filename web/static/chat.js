// The chat over /ws (docs/chat.md): the session cookie authenticates the
// socket; the server sends capabilities, threads, streamed tokens, tool
// results and confirmations. What the user may do comes from the
// capabilities event: nothing here decides.
import { html, Component, t, boot, Alert } from './lib.js';

export default class Chat extends Component {
  constructor() {
    super();
    this.state = { caps: null, denied: null, threads: [], current: '', messages: [], streaming: '', status: '',
      cards: {}, notes: [], error: null, draft: '', attachments: [], closed: false };
    this.seq = 0;
  }
  componentDidMount() { this.connect(); }
  componentWillUnmount() { if (this.ws) this.ws.close(); }
  connect() {
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    const ws = new WebSocket(scheme + location.host + '/ws?tenant=' + encodeURIComponent(boot.tenant) + '&lang=' + boot.lang);
    this.ws = ws;
    ws.onmessage = (m) => {
      let ev;
      try { ev = JSON.parse(m.data); } catch { return; }
      this.event(ev.event_type, ev.data || {});
    };
    ws.onclose = () => this.setState({ closed: true });
  }
  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }
  event(type, d) {
    const s = this.state;
    switch (type) {
      case 'capabilities':
        this.setState({ caps: d });
        if (!s.caps) {
          this.send({ type: 'list_threads' });
          const wanted = location.hash.slice(1);
          if (wanted) this.open(wanted);
        }
        break;
      case 'permission_error':
        if (!s.caps) this.setState({ denied: d });
        else this.setState({ error: { message: d.error } });
        break;
      case 'error':
        this.setState({ error: { message: d.error } });
        break;
      case 'threads':
        this.setState({ threads: d.threads || [] });
        break;
      case 'thread':
      case 'thread_created':
        this.setState({ current: d.thread.id, messages: d.messages || [], streaming: '', notes: [],
          threads: [d.thread, ...s.threads.filter((x) => x.id !== d.thread.id)] });
        history.replaceState(null, '', '#' + d.thread.id);
        break;
      case 'message':
        if (d.message.thread_id === s.current) {
          this.setState({ messages: [...s.messages.filter((m) => m.id !== d.message.id), d.message],
            streaming: d.message.role === 'assistant' ? '' : s.streaming });
        }
        break;
      case 'token':
        if (d.thread_id === s.current) this.setState({ streaming: s.streaming + d.text });
        break;
      case 'agent.started': case 'agent.running': case 'agent.waiting': case 'agent.completed': case 'agent.failed':
        if (d.thread_id === s.current) this.setState({ status: d.status + (d.error ? ': ' + d.error : '') });
        break;
      case 'chat_tool_error':
        this.setState({ notes: [...s.notes, d.error] });
        break;
      case 'confirmation_required':
        this.setState({ cards: { ...s.cards, [d.action_id]: d } });
        break;
      case 'confirmation':
        if (s.cards[d.action_id]) this.setState({ cards: { ...s.cards, [d.action_id]: { ...s.cards[d.action_id], status: d.status } } });
        break;
      case 'attachment':
        this.setState({ attachments: [...s.attachments, d.attachment] });
        break;
    }
  }
  open(id) {
    this.setState({ current: id, messages: [], streaming: '', status: '' });
    this.send({ type: 'open_thread', thread_id: id });
  }
  submit(e) {
    e.preventDefault();
    const content = this.state.draft.trim();
    if (!content) return;
    const attachments = this.state.attachments.map((a) => a.id);
    if (this.state.current) this.send({ type: 'submit_message', thread_id: this.state.current, content, attachments });
    else this.send({ type: 'start_thread', request_id: 'r' + (++this.seq), content });
    this.setState({ draft: '', attachments: [], error: null });
  }
  attach(e) {
    const file = e.target.files[0];
    e.target.value = '';
    if (!file || !this.state.current) return;
    const reader = new FileReader();
    reader.onload = () => this.send({ type: 'upload_attachment', thread_id: this.state.current, name: file.name,
      mime: file.type || 'text/plain', data: String(reader.result).split(',')[1] || '' });
    reader.readAsDataURL(file);
  }
  render(_, { caps, denied, threads, current, messages, streaming, status, cards, notes, error, draft, attachments, closed }) {
    if (denied) {
      return html`<div class="denied-screen" id="chat-denied" role="alert"><h2>${t('web.chat.denied_title')}</h2>
        <p>${t('web.chat.denied')}</p><p class="source">${denied.error}</p></div>`;
    }
    if (!caps) return html`<p>${closed ? t('web.chat.closed') : t('web.loading')}</p>`;
    return html`<div class="chat">
      <aside aria-labelledby="threads-heading"><h2 id="threads-heading">${t('web.chat.threads')}</h2>
        ${caps.can_write && html`<button class="secondary" id="new-thread" onClick=${() => {
          this.setState({ current: '', messages: [], streaming: '', status: '' }); history.replaceState(null, '', '#'); }}>${t('web.chat.new')}</button>`}
        <ul class="threads">${threads.map((th) => html`<li><button aria-current=${th.id === current ? 'true' : 'false'}
          onClick=${() => this.open(th.id)}>${th.title || th.id}</button></li>`)}</ul>
        ${threads.length === 0 && html`<p class="source">${t('web.chat.no_threads')}</p>`}
      </aside>
      <section aria-labelledby="conversation-heading"><h2 id="conversation-heading">${t('web.chat.conversation')}</h2>
        <${Alert} error=${error} />
        ${closed && html`<p class="alert" role="alert">${t('web.chat.closed')}</p>`}
        <ol class="messages" id="messages" aria-live="polite">
          ${messages.map((m) => html`<li class=${'msg ' + m.role}><span class="role">${t('web.chat.role.' + m.role)}${m.tool_name ? ' · ' + m.tool_name : ''}</span>${m.content}</li>`)}
          ${streaming && html`<li class="msg assistant streaming"><span class="role">${t('web.chat.role.assistant')}</span>${streaming}</li>`}
          ${notes.map((n) => html`<li class="msg tool denied">${n}</li>`)}
        </ol>
        ${Object.values(cards).map((c) => html`<div class="card" id=${'confirm-card-' + c.action_id}>
          <p>${c.summary}</p>
          ${c.status && c.status !== 'pending' ? html`<p role="status">${t('web.chat.confirmation.' + c.status)}</p>` : html`<div class="actions">
            <button onClick=${() => this.send({ type: 'confirm', action_id: c.action_id })}>${t('web.chat.confirm')}</button>
            <button class="secondary" onClick=${() => this.send({ type: 'cancel', action_id: c.action_id })}>${t('web.cancel')}</button></div>`}
        </div>`)}
        <p class="status" id="agent-status" role="status">${status}</p>
        ${caps.can_write ? html`<form class="composer" id="composer" onSubmit=${(e) => this.submit(e)}>
            <label class="visually-hidden" for="draft">${t('web.chat.message')}</label>
            <textarea id="draft" value=${draft} onInput=${(e) => this.setState({ draft: e.target.value })}></textarea>
            <label class="secondary attach" for="attach">${t('web.chat.attach')}</label>
            <input type="file" id="attach" class="visually-hidden" disabled=${!current} onChange=${(e) => this.attach(e)} />
            <button type="submit" id="send">${t('web.chat.send')}</button>
          </form>
          ${attachments.length > 0 && html`<p class="source">${t('web.chat.attached')}: ${attachments.map((a) => a.name).join(', ')}</p>`}`
        : html`<p class="notice" id="view-only">${t('web.chat.view_only')}</p>`}
      </section>
      <aside aria-labelledby="tools-heading"><h2 id="tools-heading">${t('web.chat.tools')}</h2>
        <ul class="tools" id="tools">${(caps.tools || []).map((tool) => html`<li class=${'tool ' + (tool.allowed ? 'allowed' : 'denied')}
          aria-disabled=${tool.allowed ? 'false' : 'true'} data-tool=${tool.tool}>${tool.tool}
          ${!tool.allowed && (tool.reason === 'plan_required' && tool.plan
            ? html`<span class="why upgrade">${t('web.chat.upgrade', { plan: tool.plan })}</span>`
            : html`<span class="why" data-reason=${tool.reason}>${tool.message || t('web.chat.unavailable')}</span>`)}</li>`)}</ul>
      </aside>
    </div>`;
  }
}
