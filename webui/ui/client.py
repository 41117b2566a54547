"""The page's CSS and browser-side script: dark theme, token counters, extra-network card clicks into the prompt."""
from __future__ import annotations

DARK_THEME_JS = "() => { document.body.classList.add('dark'); }"

CSS = """
.sdw-prompt-wrap { position: relative; }
.sdw-token-counter { position: absolute; top: 4px; right: 10px; z-index: 5; width: auto !important;
  font-size: 0.8em; opacity: 0.8; pointer-events: none; }
.sdw-token-counter .over { color: #f59e0b; }
.sdw-tool { min-width: 40px !important; max-width: 48px !important; flex-grow: 0 !important; padding: 0 !important; }
.sdw-generate-box button { min-height: 48px; }
.sdw-progress { font-size: 0.9em; }
.sdw-progress .bar { height: 8px; border-radius: 4px; background: var(--neutral-700, #444); overflow: hidden; }
.sdw-progress .bar > div { height: 100%; background: var(--color-accent, #f97316); }
.sdw-hidden { display: none !important; }
.sdw-cards { display: flex; flex-wrap: wrap; gap: 8px; max-height: 560px; overflow-y: auto; }
.sdw-card { position: relative; width: 150px; height: 200px; border-radius: 8px; overflow: hidden; cursor: pointer;
  background: var(--neutral-800, #333) center / cover no-repeat; border: 2px solid transparent; }
.sdw-card:hover { border-color: var(--color-accent, #f97316); }
.sdw-card.incompatible { opacity: 0.65; }
.sdw-card .name { position: absolute; bottom: 0; left: 0; right: 0; padding: 6px; font-size: 0.85em; color: #fff;
  background: linear-gradient(transparent, rgba(0, 0, 0, 0.85)); word-break: break-word; }
.sdw-card .badge { position: absolute; top: 4px; left: 4px; padding: 1px 6px; border-radius: 4px; font-size: 0.75em;
  color: #fff; background: rgba(37, 99, 235, 0.9); }
.sdw-card.incompatible .badge { background: rgba(185, 28, 28, 0.95); }
.sdw-card .actions { position: absolute; top: 4px; right: 4px; display: none; }
.sdw-card:hover .actions { display: block; }
.sdw-card .actions span { background: rgba(0, 0, 0, 0.7); border-radius: 4px; padding: 2px 4px; }
.sdw-card .info { display: none; position: absolute; top: 28px; left: 4px; right: 4px; padding: 4px; font-size: 0.75em;
  color: #eee; background: rgba(0, 0, 0, 0.78); border-radius: 4px; max-height: 120px; overflow: hidden; }
.sdw-card:hover .info { display: block; }
.sdw-card .placeholder { position: absolute; top: 35%; width: 100%; text-align: center; font-size: 3em; opacity: 0.35; }
.sdw-empty { opacity: 0.7; padding: 8px; }
.sdw-pre { white-space: pre-wrap; word-break: break-word; }
.sdw-dialog { position: fixed !important; top: 6vh; left: 50%; transform: translateX(-50%); width: min(1000px, 94vw);
  max-height: 88vh; overflow-y: auto; z-index: 1000; padding: 12px; box-shadow: 0 8px 40px rgba(0, 0, 0, 0.6);
  background: var(--background-fill-primary, #1f2937); border-radius: 8px; }
.sdw-dialog .sdw-dialog { position: static !important; transform: none; width: auto; max-height: none;
  box-shadow: none; padding: 0; }
.sdw-meta { width: 100%; font-size: 0.85em; border-collapse: collapse; margin-bottom: 10px; }
.sdw-meta th, .sdw-meta td { text-align: left; padding: 2px 6px;
  border-bottom: 1px solid var(--border-color-primary, #444); }
.sdw-tags { max-height: 300px; }
.sdw-saved { font-size: 0.85em; margin-top: 4px; word-break: break-all; }
.sdw-saved button, .sdw-saved a { cursor: pointer; text-decoration: none; }
[id$='_gallery'] img, [id$='_gallery'] video { object-fit: contain !important; }
"""

# Delegated listeners, installed once; they survive Gradio re-rendering the card HTML.
CLIENT_JS = """
<script>
(function () {
  if (window.sdwInstalled) { return; }
  window.sdwInstalled = true;
  document.addEventListener('focusin', function (event) {
    const box = event.target.closest && event.target.closest('.sdw-prompt textarea');
    if (box) { window.sdwLastPrompt = box; }
  });
  document.addEventListener('keydown', function (event) {
    if (event.key !== 'Enter' || !(event.ctrlKey || event.metaKey)) { return; }
    const box = event.target.closest && event.target.closest('.sdw-prompt');
    if (!box) { return; }
    event.preventDefault();  // Ctrl+Enter generates, as in A1111, instead of adding a line
    const button = document.querySelector('#' + box.id.split('_')[0] + '_generate');
    if (button) { button.click(); }
  });
  function setValue(box, text) {
    box.value = text;
    box.dispatchEvent(new Event('input', { bubbles: true }));
  }
  function targetPrompt(prefix) {
    const last = window.sdwLastPrompt;
    if (last && document.body.contains(last) && last.closest('#' + prefix + '_neg_prompt')) { return last; }
    return document.querySelector('#' + prefix + '_prompt textarea');
  }
  window.sdwInsert = function (prefix, text) {
    const box = targetPrompt(prefix);
    if (!box) { return; }
    const current = box.value;
    if (current.includes(text)) {
      setValue(box, current.replace(text, '').replace(/(^[\\s,]+)|([\\s,]+$)/g, '').replace(/,\\s*,/g, ','));
    } else {
      setValue(box, current.trim() ? current.replace(/\\s+$/, '') + ', ' + text : text);
    }
  };
  document.addEventListener('click', function (event) {
    const card = event.target.closest && event.target.closest('.sdw-card');
    if (!card) { return; }
    const prefix = card.dataset.prefix;
    if (event.target.closest('.sdw-set-preview')) {
      const box = document.querySelector('#' + prefix + '_card_action textarea');
      if (box) {
        setValue(box, card.dataset.kind + '\\u0000' + card.dataset.name + '\\u0000' + Date.now());
        setTimeout(function () { document.querySelector('#' + prefix + '_card_action_button').click(); }, 50);
      }
      return;
    }
    if (event.target.closest('.sdw-edit-metadata')) {
      const box = document.querySelector('#' + prefix + '_lora_edit_name textarea');
      setValue(box, card.dataset.name + '\\u0000' + Date.now());
      setTimeout(function () { document.querySelector('#' + prefix + '_lora_edit_button').click(); }, 50);
      return;
    }
    if (card.dataset.kind === 'checkpoint') {
      const box = document.querySelector('#' + prefix + '_card_action textarea');
      setValue(box, 'checkpoint\\u0000' + card.dataset.name + '\\u0000' + Date.now());
      setTimeout(function () { document.querySelector('#' + prefix + '_card_action_button').click(); }, 50);
      return;
    }
    window.sdwInsert(prefix, card.dataset.insert);
  });
  document.addEventListener('click', function (event) {
    const button = event.target.closest && event.target.closest('.sdw-open-folder');
    if (!button) { return; }
    const prefix = button.dataset.prefix;
    setValue(document.querySelector('#' + prefix + '_open_folder_path textarea'), button.dataset.folder);
    setTimeout(function () { document.querySelector('#' + prefix + '_open_folder_button').click(); }, 50);
  });
})();
</script>
"""
