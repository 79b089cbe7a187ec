// A windowed list: only the rows in view (and a few around) are in the DOM,
// so thousands of rows scroll smoothly.

import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';

const OVERSCAN = 8;

export function VirtualList<T>({
  items,
  rowHeight,
  render,
  label,
  keyOf,
}: {
  items: T[];
  keyOf: (item: T) => string;
  rowHeight: number;
  render: (item: T, index: number) => ComponentChildren;
  label: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ top: 0, height: 600 });
  useEffect(() => {
    const el = box.current!;
    const update = () => setView({ top: el.scrollTop, height: el.clientHeight });
    update();
    const observer = new ResizeObserver(update);
    observer.observe(el);
    el.addEventListener('scroll', update, { passive: true });
    return () => {
      observer.disconnect();
      el.removeEventListener('scroll', update);
    };
  }, []);
  const first = Math.max(0, Math.floor(view.top / rowHeight) - OVERSCAN);
  const last = Math.min(items.length, Math.ceil((view.top + view.height) / rowHeight) + OVERSCAN);
  return (
    <div class="virtual" ref={box} role="list" aria-label={label}>
      <div style={{ height: `${items.length * rowHeight}px`, position: 'relative' }}>
        {items.slice(first, last).map((item, i) => (
          <div
            role="listitem"
            class="virtual-row"
            key={keyOf(item)}
            style={{ height: `${rowHeight}px`, transform: `translateY(${(first + i) * rowHeight}px)` }}
          >
            {render(item, first + i)}
          </div>
        ))}
      </div>
    </div>
  );
}
