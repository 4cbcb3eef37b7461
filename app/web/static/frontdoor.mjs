// Progressive enhancement for the Front Door pages. Everything works without this script:
// it starts the NHS.UK frontend components (conditional questions, error summary focus,
// character counts) and keeps the console's decision preview up to date as the call goes on.
import { initAll } from './nhsuk/nhsuk-frontend.min.js'

initAll()

// The NHS.UK frontend marks radios that reveal a conditional question with aria-expanded, which
// ARIA 1.2 does not allow on radio buttons (axe-core reports it). The link to the revealed
// question stays exposed through aria-controls. Runs after the frontend's own handlers, which
// are registered first and on elements nearer the radio.
function dropAriaExpandedFromRadios () {
  document
    .querySelectorAll('input[type="radio"][aria-expanded]')
    .forEach((radio) => radio.removeAttribute('aria-expanded'))
}
dropAriaExpandedFromRadios()
document.addEventListener('click', dropAriaExpandedFromRadios)
window.addEventListener('pageshow', dropAriaExpandedFromRadios)

const PREVIEW_DELAY_MS = 300

function livePreview (form) {
  const region = document.getElementById('decision-preview')
  const url = form.dataset.decisionPreview
  const tokenField = form.querySelector('input[name="csrf_token"]')
  if (!region || !url || !tokenField) return

  let timer = null
  let latest = 0

  async function update () {
    const requestNumber = ++latest
    const body = new URLSearchParams(new FormData(form))
    try {
      const response = await fetch(url, {
        method: 'POST',
        body,
        credentials: 'same-origin',
        headers: { Accept: 'application/json', 'X-CSRF-Token': tokenField.value }
      })
      // A slower, older answer must not replace a newer one.
      if (!response.ok || requestNumber !== latest) return
      const result = await response.json()
      if (requestNumber !== latest) return
      region.innerHTML = result.html
      region.dataset.urgency = result.decision ? result.decision.urgency.code : ''
    } catch (error) {
      // Offline or signed out: the "Preview decision" button still works.
    }
  }

  function schedule () {
    window.clearTimeout(timer)
    timer = window.setTimeout(update, PREVIEW_DELAY_MS)
  }

  form.addEventListener('change', schedule)
  form.addEventListener('input', schedule)
}

document.querySelectorAll('form[data-decision-preview]').forEach(livePreview)
