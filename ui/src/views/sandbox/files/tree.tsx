// A lazily loaded directory tree: a folder's entries are listed when it is
// first opened.

import { useEffect, useState } from 'preact/hooks';
import type { Api } from '../../../api';
import type { FileEntry } from '../../../types';
import { ErrorBox, Spinner } from '../../../components/ui';
import { useDelayed } from '../../../hooks';

export interface TreeProps {
  api: Api;
  sandbox: string;
  /** Bumped to list every open folder again. */
  version: number;
  selected?: string;
  onSelect: (entry: FileEntry) => void;
}

function Folder({ path, depth, ...props }: TreeProps & { path: string; depth: number }) {
  const [entries, setEntries] = useState<FileEntry[]>();
  const [error, setError] = useState<Error>();
  const [loading, setLoading] = useState(true);
  const slow = useDelayed(loading);
  useEffect(() => {
    let live = true;
    setLoading(true);
    props.api
      .get<{ items: FileEntry[] }>(`/v1/sandboxes/${props.sandbox}/files/list`, { path })
      .then(
        (list) => live && (setEntries(list.items), setError(undefined)),
        (err: Error) => live && setError(err),
      )
      .finally(() => live && setLoading(false));
    return () => void (live = false);
  }, [path, props.version]);
  if (error) return <ErrorBox error={error} />;
  if (!entries) return slow ? <Spinner /> : null;
  const sorted = [...entries].sort((a, b) => Number(b.is_dir) - Number(a.is_dir) || a.name.localeCompare(b.name));
  return (
    <ul role={depth === 0 ? 'tree' : 'group'} aria-label={depth === 0 ? 'Files' : undefined} class="tree">
      {sorted.length === 0 && <li class="muted tree-empty">empty</li>}
      {sorted.map((entry) => (
        <Node key={entry.path} entry={entry} depth={depth} {...props} />
      ))}
    </ul>
  );
}

function Node({ entry, depth, ...props }: TreeProps & { entry: FileEntry; depth: number }) {
  const [open, setOpen] = useState(false);
  const selected = props.selected === entry.path;
  const click = () => {
    if (entry.is_dir) setOpen(!open);
    props.onSelect(entry);
  };
  return (
    <li role="treeitem" aria-expanded={entry.is_dir ? open : undefined} aria-selected={selected}>
      <button type="button" class={`tree-item ${selected ? 'selected' : ''}`} onClick={click} data-path={entry.path}>
        <span aria-hidden="true" class="tree-icon">
          {entry.is_dir ? (open ? '▾' : '▸') : entry.is_symlink ? '↪' : '·'}
        </span>
        {entry.name}
      </button>
      {entry.is_dir && open && <Folder path={entry.path} depth={depth + 1} {...props} />}
    </li>
  );
}

/** The tree rooted at `root`. */
export function FileTree({ root, ...props }: TreeProps & { root: string }) {
  return <Folder path={root} depth={0} {...props} />;
}
