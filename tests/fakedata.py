"""Small files laid out like the MovieLens releases, for the error-path tests."""

from __future__ import annotations

import zipfile
from pathlib import Path

MOVIES_CSV = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    '2,"Jumanji, The (1995)",Adventure|Children|Fantasy\n'
    "3,Heat (1995),Action|Crime|Thriller\n"
    "4,Nothing (2000),(no genres listed)\n"
)
RATINGS_CSV = (
    "userId,movieId,rating,timestamp\n"
    "1,1,4.0,964982703\n"
    "1,3,4.5,964981247\n"
    "2,1,2.5,964982224\n"
    "2,2,5.0,964983815\n"
    "3,3,0.5,964982931\n"
)
TAGS_CSV = (
    "userId,movieId,tag,timestamp\n"
    "1,1,funny,1445714994\n"
    '1,1,"pixar, animation",1445714996\n'
    "2,2,board game,1445715000\n"
    "9,1,by a non-rater,1445715001\n"
)


def small_csv_files(ratings: str = RATINGS_CSV, movies: str = MOVIES_CSV,
                    tags: str | None = TAGS_CSV) -> dict[str, str]:
    files = {"ratings.csv": ratings, "movies.csv": movies}
    if tags is not None:
        files["tags.csv"] = tags
    return files


def write_zip(path: Path, folder: str, files: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            z.writestr(f"{folder}/{name}", content)
    return path


def write_dir(path: Path, files: dict[str, str | bytes]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        p = path / name
        if isinstance(content, str):
            p.write_text(content, encoding="utf-8")
        else:
            p.write_bytes(content)
    return path


U_ITEM = "".join(
    f"{i}|Movie {i} (1995)|01-Jan-1995||http://x/{i}|" + "|".join(
        "1" if g == i % 19 else "0" for g in range(19)) + "\n"
    for i in range(1, 4)
).encode("latin-1")
U_DATA = "1\t1\t5\t881250949\n1\t2\t3\t891717742\n2\t3\t1\t878887116\n"
