"""A1111's "edit attention": Ctrl+Up/Down changes the weight of the selection or of the <lora:…> tag under the
cursor, by the step sizes set in Settings."""
from __future__ import annotations

from webui.processing.settings import Settings


def keyedit_html(settings: Settings) -> str:
    """The step sizes, as data attributes the page script reads (rendered at every page load)."""
    return (f"<span class='sdw-keyedit' data-attention='{settings.keyedit_precision_attention:g}' "
            f"data-extra='{settings.keyedit_precision_extra:g}'></span>")


KEYEDIT_JS = """
<script>
(function () {
  if (window.sdwKeyeditInstalled) { return; }
  window.sdwKeyeditInstalled = true;
  function step(kind) {
    const span = document.querySelector('.sdw-keyedit');
    const value = parseFloat(span ? span.dataset[kind] : '');
    return value > 0 ? value : (kind === 'extra' ? 0.05 : 0.1);
  }
  function format(value, stepSize) {
    const digits = Math.max(0, Math.ceil(-Math.log10(stepSize) - 1e-9));
    return String(parseFloat(value.toFixed(digits)));
  }
  function commit(box, text, selStart, selEnd) {
    box.value = text;
    box.setSelectionRange(selStart, selEnd);
    box.dispatchEvent(new Event('input', { bubbles: true }));
  }
  function editTag(box, text, start, end, delta) {
    const tags = /<(lora|lyco|hypernet):([^<>]*?)(?::(-?[\\d.]+))?>/gi;
    for (let m = tags.exec(text); m; m = tags.exec(text)) {
      if (start < m.index || end > m.index + m[0].length) { continue; }
      const size = step('extra');
      const weight = (m[3] === undefined ? 1 : parseFloat(m[3])) + delta * size;
      const tag = '<' + m[1] + ':' + m[2] + ':' + format(weight, size) + '>';
      commit(box, text.slice(0, m.index) + tag + text.slice(m.index + m[0].length), m.index, m.index + tag.length);
      return true;
    }
    return false;
  }
  function enclosing(text, start, end) {
    const open = text.lastIndexOf('(', start - 1);
    const close = text.indexOf(')', end);
    if (open < 0 || close < 0) { return null; }
    if (text.slice(open + 1, start).includes(')') || text.slice(end, close).includes('(')) { return null; }
    return [open + 1, close];
  }
  function wordAt(text, position) {
    let start = position, end = position;
    while (start > 0 && !/[\\s,()<>]/.test(text[start - 1])) { start--; }
    while (end < text.length && !/[\\s,()<>]/.test(text[end])) { end++; }
    return [start, end];
  }
  document.addEventListener('keydown', function (event) {
    if (!(event.ctrlKey || event.metaKey) || (event.key !== 'ArrowUp' && event.key !== 'ArrowDown')) { return; }
    const box = event.target;
    if (!box.matches || !box.matches('.sdw-prompt textarea')) { return; }
    event.preventDefault();
    const delta = event.key === 'ArrowUp' ? 1 : -1;
    let text = box.value, start = box.selectionStart, end = box.selectionEnd;
    if (editTag(box, text, start, end, delta)) { return; }
    if (start === end) {
      [start, end] = enclosing(text, start, end) || wordAt(text, start);
      if (start === end) { return; }
    }
    while (start < end && text[start] === ' ') { start++; }
    while (end > start && text[end - 1] === ' ') { end--; }
    let inner = text.slice(start, end), weight = 1;
    const tail = text[start - 1] === '(' ? text.slice(end).match(/^:\\s*(-?[\\d.]+)\\s*\\)/) : null;
    if (tail) {  // "(text:1.1)" with only its text selected
      weight = parseFloat(tail[1]);
      start--; end += tail[0].length;
    } else if (text[start - 1] === '(' && text[end] === ')') {
      const parts = inner.match(/^([\\s\\S]*):\\s*(-?[\\d.]+)\\s*$/);
      if (parts) { inner = parts[1]; weight = parseFloat(parts[2]); } else { weight = 1.1; }
      start--; end++;
    }
    const size = step('attention');
    const shown = format(weight + delta * size, size);
    const replacement = shown === '1' ? inner : '(' + inner + ':' + shown + ')';
    const innerStart = start + (shown === '1' ? 0 : 1);
    commit(box, text.slice(0, start) + replacement + text.slice(end), innerStart, innerStart + inner.length);
  });
})();
</script>
"""
