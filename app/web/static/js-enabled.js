// Runs at the top of <body>, before the page is drawn: styles for scripted pages (such as hiding
// conditional questions until chosen) apply at once, without a flash of the no-script layout.
// A separate file because the Content-Security-Policy allows no inline scripts.
document.body.className +=
  ' js-enabled' + ('noModule' in HTMLScriptElement.prototype ? ' nhsuk-frontend-supported' : '')
