// The access token: taken from ?token= on first load, kept for this tab in
// sessionStorage, and removed from the address bar so it does not end up in
// bookmarks, screenshots or the history.

const STORAGE_KEY = 'nightshift.token';

export function adoptTokenFromAddress() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get('token');
  if (token === null) return;
  if (token.trim() !== '') saveToken(token.trim());
  url.searchParams.delete('token');
  window.history.replaceState(window.history.state, '', url.pathname + url.search + url.hash);
}

export function loadToken() {
  return sessionStorage.getItem(STORAGE_KEY) || '';
}

export function saveToken(token) {
  sessionStorage.setItem(STORAGE_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(STORAGE_KEY);
}
