"""Paged memory with copy-on-write snapshots and a cached Merkle tree.

Memory is 2^20 virtual pages of 4 KiB. A virtual page maps to a page of the pool
(an array of native-endian u32 words holding big-endian memory words) or to -1, a page
of zeros. Pages below `meta[FROZEN_BELOW]` are shared with snapshots: the first write
to one copies it (semantics.writable_page). A write also logs the virtual page once,
so `sync_hashes` re-hashes only the pages written since the last sync.
"""

from __future__ import annotations

import numpy as np

from . import layout as L
from .merkle import ZERO_HASHES, UpperTree, leaf_proof, page_root
from .semantics import CAPACITY, FROZEN_BELOW, META_COUNT, N_LOG, N_PAGES, MemoryArrays, writable_page

_ZERO_WORDS = np.zeros(L.WORDS_PER_PAGE, dtype=np.uint32)
_ZERO_WORDS.flags.writeable = False
_ZERO_PAGE_ROOT = ZERO_HASHES[L.PAGE_DEPTH]


class PagedMemory:
    def __init__(self, capacity: int = 64):
        self.page_table = np.full(L.PAGE_COUNT, -1, dtype=np.int32)
        self.pool = np.zeros(capacity * L.WORDS_PER_PAGE, dtype=np.uint32)
        self.page_dirty = np.zeros(capacity, dtype=np.uint8)
        self.dirty_log = np.zeros(capacity, dtype=np.int32)
        self.meta = np.zeros(META_COUNT, dtype=np.int64)
        self.meta[CAPACITY] = capacity
        # Roots of pool pages that were hashed and not written since, by pool page.
        self.page_roots: dict[int, bytes] = {}
        self.upper = UpperTree()
        self._rebuild_arrays()

    def _rebuild_arrays(self) -> None:
        self.arrays = MemoryArrays(self.page_table, self.pool, self.page_dirty, self.dirty_log, self.meta)

    # --- pool management ------------------------------------------------------------

    @property
    def pages_in_use(self) -> int:
        return int(self.meta[N_PAGES])

    def reserve(self, free_pages: int = 1) -> None:
        """Make sure the pool has at least `free_pages` unused pages."""
        needed = int(self.meta[N_PAGES]) + free_pages
        capacity = int(self.meta[CAPACITY])
        if needed <= capacity:
            return
        new_capacity = max(needed, capacity * 2)
        pool = np.zeros(new_capacity * L.WORDS_PER_PAGE, dtype=np.uint32)
        pool[: self.pool.size] = self.pool
        page_dirty = np.zeros(new_capacity, dtype=np.uint8)
        page_dirty[:capacity] = self.page_dirty
        dirty_log = np.zeros(new_capacity, dtype=np.int32)
        dirty_log[:capacity] = self.dirty_log
        self.pool, self.page_dirty, self.dirty_log = pool, page_dirty, dirty_log
        self.meta[CAPACITY] = new_capacity
        self._rebuild_arrays()

    def freeze(self) -> None:
        """Share every page in use with a snapshot: later writes copy them first."""
        self.meta[FROZEN_BELOW] = self.meta[N_PAGES]

    def truncate(self, pages_in_use: int) -> None:
        """Drop every pool page from `pages_in_use` on (pages of a discarded query)."""
        self.meta[N_PAGES] = pages_in_use
        self.page_dirty[pages_in_use:] = 0
        for page in [p for p in self.page_roots if p >= pages_in_use]:
            del self.page_roots[page]

    # --- reading and writing ----------------------------------------------------------

    def page_words(self, vpage: int) -> np.ndarray:
        """The page's 1024 words (a view into the pool; zeros for an unwritten page)."""
        return self.pool_page_words(int(self.page_table[vpage]))

    def pool_page_words(self, page: int) -> np.ndarray:
        if page < 0:
            return _ZERO_WORDS
        start = page * L.WORDS_PER_PAGE
        return self.pool[start : start + L.WORDS_PER_PAGE]

    def page_bytes(self, vpage: int) -> bytes:
        return self.page_words(vpage).astype(">u4").tobytes()

    def read(self, address: int, length: int) -> bytes:
        chunks = []
        while length > 0:
            offset = address % L.PAGE_BYTES
            take = min(length, L.PAGE_BYTES - offset)
            chunks.append(self.page_bytes(address >> L.PAGE_SHIFT)[offset : offset + take])
            address += take
            length -= take
        return b"".join(chunks)

    def read_u32(self, address: int) -> int:
        return int.from_bytes(self.read(address, 4), "big")

    def write(self, address: int, data: bytes) -> None:
        """Write bytes through the same copy-on-write path as the VM's stores."""
        if address + len(data) > 1 << L.ADDRESS_BITS:
            raise ValueError("write past the end of the address space")
        view = memoryview(data)
        while view:
            vpage = address >> L.PAGE_SHIFT
            offset = address % L.PAGE_BYTES
            take = min(len(view), L.PAGE_BYTES - offset)
            content = bytearray(self.page_bytes(vpage))
            content[offset : offset + take] = view[:take]
            self.reserve(1)
            page = writable_page(self.arrays, vpage)
            start = page * L.WORDS_PER_PAGE
            self.pool[start : start + L.WORDS_PER_PAGE] = np.frombuffer(bytes(content), dtype=">u4")
            address += take
            view = view[take:]

    # --- hashing -------------------------------------------------------------------------

    def sync_hashes(self) -> None:
        """Re-hash the pages written since the last sync and update the tree above them."""
        count = int(self.meta[N_LOG])
        if count == 0:
            return
        roots = {}
        for vpage in {int(v) for v in self.dirty_log[:count]}:
            page = int(self.page_table[vpage])
            root = page_root(self.pool_page_words(page))
            self.page_roots[page] = root
            self.page_dirty[page] = 0
            roots[vpage] = root
        self.meta[N_LOG] = 0
        self.upper.set_pages(roots)

    def mapped_pages(self) -> tuple[np.ndarray, np.ndarray]:
        """(virtual pages, pool pages) of every page that is not a page of zeros."""
        vpages = np.flatnonzero(self.page_table >= 0).astype(np.int32)
        return vpages, self.page_table[vpages].copy()

    @property
    def log_position(self) -> int:
        """How many pages the write log holds (it restarts at 0 when hashes are synced)."""
        return int(self.meta[N_LOG])

    def logged_pages(self, start: int) -> np.ndarray:
        """The virtual pages logged as written from log position `start` on."""
        return self.dirty_log[start : int(self.meta[N_LOG])].copy()

    def load_mapping(self, table: np.ndarray, vpages: np.ndarray, pool_pages: np.ndarray, upper: UpperTree) -> None:
        """Point the page table at a snapshot's pages: `table` (a whole page table) with `vpages` mapped
        to `pool_pages` instead; `upper` is that snapshot's tree."""
        self.page_table[:] = table
        self.page_table[vpages] = pool_pages
        self.meta[N_LOG] = 0
        self.upper = upper

    def tree_with_pages(self, base: UpperTree, vpages, pool_pages) -> UpperTree:
        """A copy of `base` with virtual pages `vpages` backed by `pool_pages`."""
        roots = {}
        for vpage, page in zip(vpages.tolist(), pool_pages.tolist()):
            roots[vpage] = self.pool_page_root(page)
        tree = base.copy()
        tree.set_pages(roots)
        return tree

    def pool_page_root(self, page: int) -> bytes:
        if page < 0:
            return _ZERO_PAGE_ROOT
        root = self.page_roots.get(page)
        if root is None or self.page_dirty[page]:
            root = page_root(self.pool_page_words(page))
            self.page_roots[page] = root
        return root

    @property
    def root(self) -> bytes:
        self.sync_hashes()
        return self.upper.root

    def region_root(self, region: L.Region) -> bytes:
        self.sync_hashes()
        return self.upper.node(region.gindex)

    def region_siblings(self, region: L.Region) -> list[bytes]:
        """Roots beside the region's path up to the memory root, bottom first."""
        self.sync_hashes()
        siblings, gindex = [], region.gindex
        while gindex > 1:
            siblings.append(self.upper.node(gindex ^ 1))
            gindex >>= 1
        return siblings

    def proof(self, address: int) -> bytes:
        """Leaf proof (896 bytes) of the 32-byte leaf holding `address`."""
        self.sync_hashes()
        return leaf_proof(self.page_words(address >> L.PAGE_SHIFT), address, self.upper)
