// The app's entry: loads the module of the page the server named.
import { boot, html, render, t } from './lib.js';

const root = document.getElementById('app');
import('./' + boot.page + '.js')
  .then((m) => { root.textContent = ''; render(html`<${m.default} />`, root); })
  .catch(() => { root.textContent = t('web.error.load'); });
