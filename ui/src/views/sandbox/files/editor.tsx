// A text editor for one file: load, edit, save (an atomic write).

import { useEffect, useState } from 'preact/hooks';
import type { Api } from '../../../api';
import { Button, ErrorBox, Loading } from '../../../components/ui';
import { useAction } from '../../../hooks';

/** Files bigger than this are not opened in the editor. */
const MAX_EDIT = 2 * 1024 * 1024;

export function Editor({ api, sandbox, path, size }: { api: Api; sandbox: string; path: string; size: number }) {
  const [text, setText] = useState<string>();
  const [saved, setSaved] = useState<string>();
  const [error, setError] = useState<Error>();
  const [run, busy, saveError] = useAction();
  const url = `/v1/sandboxes/${sandbox}/files`;

  useEffect(() => {
    setText(undefined);
    setError(undefined);
    if (size > MAX_EDIT) {
      setError(new Error(`${path} is too big to edit here (${size} bytes); download it instead.`));
      return;
    }
    let live = true;
    api
      .fetch('GET', url, { query: { path } })
      .then((res) => res.arrayBuffer())
      .then((buf) => {
        if (!live) return;
        const bytes = new Uint8Array(buf);
        if (bytes.subarray(0, 8192).includes(0)) throw new Error(`${path} is binary; download it instead.`);
        const content = new TextDecoder().decode(bytes);
        setText(content);
        setSaved(content);
      })
      .catch((err: Error) => live && setError(err));
    return () => void (live = false);
  }, [path]);

  const save = () =>
    run(async () => {
      await api.fetch('PUT', url, { query: { path }, body: text ?? '', headers: { 'content-type': 'application/octet-stream' } });
      setSaved(text);
    });
  const dirty = text !== undefined && text !== saved;

  return (
    <div class="editor">
      <div class="toolbar">
        <span class="mono">{path}</span>
        <span class="spacer" />
        {dirty && <span class="muted">unsaved</span>}
        <Button kind="primary" busy={busy} disabled={!dirty} onClick={save}>
          Save
        </Button>
      </div>
      <ErrorBox error={error ?? saveError} />
      <Loading loading={text === undefined && !error} label="Opening…" />
      {text !== undefined && (
        <textarea
          class="code"
          name="content"
          aria-label={`Content of ${path}`}
          spellcheck={false}
          value={text}
          onInput={(e) => setText(e.currentTarget.value)}
          onKeyDown={(e) => {
            if ((e.ctrlKey || e.metaKey) && e.key === 's') {
              e.preventDefault();
              if (dirty) void save();
            }
          }}
        />
      )}
    </div>
  );
}
