// The file browser: a tree, uploads (drag and drop or a picker), downloads
// of files and folders (a tar), a text editor.

import { useRef, useState } from 'preact/hooks';
import type { SandboxTabProps } from '../../../routes';
import type { FileEntry } from '../../../types';
import { Button, ErrorBox } from '../../../components/ui';
import { useAction } from '../../../hooks';
import { download } from '../../../download';
import { FileTree } from './tree';
import { Editor } from './editor';

const parent = (path: string) => path.replace(/\/[^/]*$/, '') || '/';
const join = (dir: string, name: string) => `${dir.replace(/\/$/, '')}/${name}`;

export function FilesTab({ session, sandbox }: SandboxTabProps) {
  const api = session.api;
  const [root, setRoot] = useState('/');
  const [rootInput, setRootInput] = useState('/');
  const [selected, setSelected] = useState<FileEntry>();
  const [version, setVersion] = useState(0);
  const [dragging, setDragging] = useState(false);
  const [status, setStatus] = useState('');
  const [run, busy, error] = useAction();
  const picker = useRef<HTMLInputElement>(null);
  const base = `/v1/sandboxes/${sandbox.id}/files`;

  const targetDir = selected ? (selected.is_dir ? selected.path : parent(selected.path)) : root;
  const refresh = () => setVersion((v) => v + 1);

  const upload = (files: FileList | File[]) =>
    run(async () => {
      const list = [...files];
      for (const [i, file] of list.entries()) {
        setStatus(`Uploading ${file.name} (${i + 1}/${list.length})…`);
        await api.fetch('PUT', base, {
          query: { path: join(targetDir, file.name) },
          body: file,
          headers: { 'content-type': 'application/octet-stream' },
        });
      }
      setStatus(`Uploaded ${list.length} file${list.length === 1 ? '' : 's'} to ${targetDir}`);
      refresh();
    });

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    if (e.dataTransfer?.files.length) void upload(e.dataTransfer.files);
  };

  const downloadSelected = () =>
    run(async () => {
      const entry = selected!;
      if (entry.is_dir) await download(api, `${base}/download`, { path: entry.path }, `${entry.name || 'root'}.tar`);
      else await download(api, base, { path: entry.path }, entry.name);
    });

  const remove = () =>
    run(async () => {
      const entry = selected!;
      if (!confirm(`Delete ${entry.path}${entry.is_dir ? ' and everything in it' : ''}?`)) return;
      await api.del(base, { path: entry.path, recursive: entry.is_dir ? 'true' : undefined });
      setSelected(undefined);
      refresh();
    });

  const mkdir = () =>
    run(async () => {
      const name = prompt(`New folder in ${targetDir}:`);
      if (!name) return;
      await api.post(`${base}/mkdir`, undefined, { path: join(targetDir, name) });
      refresh();
    });

  return (
    <div
      class={`tab-body files ${dragging ? 'dragging' : ''}`}
      onDragOver={(e) => {
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={onDrop}
    >
      <div class="toolbar">
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault();
            setSelected(undefined);
            setRoot(rootInput || '/');
          }}
        >
          <label>
            Folder <input name="root" value={rootInput} onInput={(e) => setRootInput(e.currentTarget.value)} />
          </label>
          <Button type="submit">Open</Button>
        </form>
        <Button busy={busy} onClick={() => picker.current!.click()}>
          Upload…
        </Button>
        <input
          ref={picker}
          type="file"
          multiple
          hidden
          name="upload"
          onChange={(e) => {
            const files = e.currentTarget.files;
            if (files?.length) void upload([...files]);
            e.currentTarget.value = '';
          }}
        />
        <Button busy={busy} onClick={mkdir}>
          New folder
        </Button>
        <Button busy={busy} onClick={downloadSelected} disabled={!selected}>
          Download
        </Button>
        <Button kind="danger" busy={busy} onClick={remove} disabled={!selected}>
          Delete
        </Button>
        <Button onClick={refresh}>Refresh</Button>
      </div>
      <p class="muted drop-hint">
        Drop files anywhere here to upload them to <span class="mono">{targetDir}</span>. {status}
      </p>
      <ErrorBox error={error} />
      <div class="split">
        <div class="tree-pane">
          <FileTree api={api} sandbox={sandbox.id} root={root} version={version} selected={selected?.path} onSelect={setSelected} />
        </div>
        <div class="editor-pane">
          {selected && !selected.is_dir ? (
            <Editor key={`${selected.path}-${version}`} api={api} sandbox={sandbox.id} path={selected.path} size={selected.size} />
          ) : (
            <p class="empty">Select a file to edit it, or a folder to upload into it.</p>
          )}
        </div>
      </div>
    </div>
  );
}
