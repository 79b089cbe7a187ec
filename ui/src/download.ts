// Downloads through fetch (so the key stays in a header), saved by the
// browser from a blob URL.

import type { Api } from './api';

/** Fetches `path` and saves the answer as `filename`. */
export async function download(api: Api, path: string, query: Record<string, string>, filename: string): Promise<void> {
  const res = await api.fetch('GET', path, { query });
  const url = URL.createObjectURL(await res.blob());
  try {
    const a = document.createElement('a');
    a.href = url;
    a.download = filename;
    document.body.append(a);
    a.click();
    a.remove();
  } finally {
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
}
