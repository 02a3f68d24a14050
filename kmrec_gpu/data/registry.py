"""Every GroupLens MovieLens release: layout, encoding, checksums and expected counts.

Checksums and counts come from GroupLens's own README files and from copies checked
against them (``shared/datasets/README.md``). Where a digest is not known here, a
download is checked against the ``.md5`` file GroupLens publishes beside each zip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kmrec_gpu.data.parse import Table
from kmrec_gpu.errors import UnknownDataset
from kmrec_gpu.ratings import RatingScale

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"

HALF_STARS = RatingScale(0.5, 5.0, 0.5)
WHOLE_STARS = RatingScale(1.0, 5.0, 1.0)

# ml-100k's u.genre order; its u.item carries one 0/1 column per genre in this order.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip

_R = ("user", "item", "rating", "timestamp")
_RK = ("int", "int", "float", "int")
_M = ("item", "title", "genres")
_T = ("user", "item", "tag", "timestamp")
_TK = ("int", "int", "str", "int")

CSV_LAYOUT = {
    "ratings": Table(_R, _RK, ",", header=("userId", "movieId", "rating", "timestamp")),
    "movies": Table(_M, ("int", "str", "str"), ",", header=("movieId", "title", "genres"),
                    quoted=True),
    "tags": Table(_T, _TK, ",", header=("userId", "movieId", "tag", "timestamp"), quoted=True),
}


def _dat_layout(encoding: str) -> dict[str, Table]:
    return {
        "ratings": Table(_R, _RK, "::"),
        "movies": Table(_M, ("int", "str", "str"), "::", encoding=encoding),
        "tags": Table(_T, _TK, "::", encoding=encoding),
    }


ML100K_LAYOUT = {
    "ratings": Table(_R, _RK, "\t"),
    "movies": Table(
        ("item", "title", "release", "video_release", "url", *[f"g{i}" for i in range(19)]),
        ("int", "str", "str", "str", "str", *["int"] * 19),
        "|",
        encoding="latin-1",
    ),
}


@dataclass(frozen=True)
class Expected:
    """Counts as GroupLens states them; None where not pinned down."""

    n_ratings: int
    n_users: int | None = None  # users with at least one rating
    n_items: int | None = None  # items with at least one rating
    n_movies: int | None = None  # rows of the movie table
    n_tags: int | None = None


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    folder: str  # top-level folder inside the official zip
    files: dict[str, str]  # role ("ratings", "movies", "tags") -> member file name
    layout: dict[str, Table]
    genre_encoding: str  # "flags" (u.item 0/1 columns) or "pipe" ("A|B|C")
    scale: RatingScale
    expected: Expected
    zip_sha256: str | None = None
    zip_md5: str | None = None
    zip_size: int | None = None
    member_sha256: dict[str, str] = field(default_factory=dict)
    description: str = ""
    licence: str = "GroupLens research licence: see the README inside the zip"
    downloadable: bool = True

    @property
    def zip_name(self) -> str:
        return f"{self.name}.zip"

    def url(self, base: str = GROUPLENS_URL) -> str:
        return f"{base.rstrip('/')}/{self.zip_name}"


_ML100K_SUMS = {
    "README": "4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52",
    "allbut.pl": "bfc6a75cbd65c74bb38a0b580dbe866af252733dfa9a65a2c4b93258774ee8a3",
    "mku.sh": "7929735c375e89a04340e34de621bf2ea643cd04b0bcda2c6f458e4be961ae71",
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
    "u.info": "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.occupation": "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
    "u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
    "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
    "u2.base": "6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e",
    "u2.test": "4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3",
    "u3.base": "afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d",
    "u3.test": "0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d",
    "u4.base": "219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca",
    "u4.test": "7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9",
    "u5.base": "a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485",
    "u5.test": "351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634",
    "ua.base": "67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2",
    "ua.test": "d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42",
    "ub.base": "237254d253b6ad7de84f919d041055428646254f34ed8f562703c899430cd881",
    "ub.test": "d54a72d05730d5892062734b2bec73e976f9b713d18c828a18b968d6cce442da",
}

_CSV_FILES = {"ratings": "ratings.csv", "movies": "movies.csv", "tags": "tags.csv"}

MOVIELENS: dict[str, DatasetSpec] = {
    s.name: s
    for s in [
        DatasetSpec(
            name="ml-100k",
            folder="ml-100k",
            files={"ratings": "u.data", "movies": "u.item"},
            layout=ML100K_LAYOUT,
            genre_encoding="flags",
            scale=WHOLE_STARS,
            expected=Expected(100_000, 943, 1_682, 1_682),
            zip_sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
            zip_md5="0e33842e24a9c977be4e0107933c0723",
            zip_size=4_924_029,
            member_sha256=_ML100K_SUMS,
            description="100,000 ratings (1-5) by 943 users on 1,682 movies, 1997-1998",
            licence="GroupLens research licence; may not be redistributed without permission",
        ),
        DatasetSpec(
            name="ml-1m",
            folder="ml-1m",
            files={"ratings": "ratings.dat", "movies": "movies.dat"},
            layout=_dat_layout("latin-1"),
            genre_encoding="pipe",
            scale=WHOLE_STARS,
            expected=Expected(1_000_209, 6_040, 3_706),
            zip_sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
            zip_md5="c4d9eecfca2ab87c1945afe126590906",
            zip_size=5_917_549,
            description="1,000,209 ratings (1-5) by 6,040 users on 3,706 rated movies, 2000",
        ),
        DatasetSpec(
            name="ml-10m",
            folder="ml-10M100K",
            files={"ratings": "ratings.dat", "movies": "movies.dat", "tags": "tags.dat"},
            layout=_dat_layout("utf-8"),
            genre_encoding="pipe",
            scale=HALF_STARS,
            expected=Expected(10_000_054, n_movies=10_681),
            zip_md5="ce571fd55effeba0271552578f2648bd",
            description="10,000,054 half-star ratings and 95,580 tags, 10,681 movies",
        ),
        DatasetSpec(
            name="ml-20m",
            folder="ml-20m",
            files=_CSV_FILES,
            layout=CSV_LAYOUT,
            genre_encoding="pipe",
            scale=HALF_STARS,
            expected=Expected(20_000_263, 138_493, n_movies=27_278),
            zip_md5="cd245b17a1ae2cc31bb14903e1204af3",
            zip_size=198_702_078,
            description="20,000,263 ratings by 138,493 users, 1995-2015",
        ),
        DatasetSpec(
            name="ml-25m",
            folder="ml-25m",
            files=_CSV_FILES,
            layout=CSV_LAYOUT,
            genre_encoding="pipe",
            scale=HALF_STARS,
            expected=Expected(25_000_095, 162_541, n_movies=62_423),
            zip_md5="6b51fb2759a8657d3bfcbfc42b592ada",
            zip_size=261_978_986,
            description="25,000,095 ratings by 162,541 users, 1995-2019",
        ),
        DatasetSpec(
            name="ml-32m",
            folder="ml-32m",
            files=_CSV_FILES,
            layout=CSV_LAYOUT,
            genre_encoding="pipe",
            scale=HALF_STARS,
            expected=Expected(32_000_204, 200_948, n_movies=87_585),
            description="32,000,204 ratings by 200,948 users, 1995-2023",
        ),
        DatasetSpec(
            name="ml-latest-small",
            folder="ml-latest-small",
            files=_CSV_FILES,
            layout=CSV_LAYOUT,
            genre_encoding="pipe",
            scale=HALF_STARS,
            expected=Expected(100_836, 610, 9_724, 9_742, 3_683),
            zip_sha256="696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
            zip_md5="31a303aabbc519bd33d025e44d6c2570",
            zip_size=978_202,
            member_sha256={
                "ratings.csv": "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
                "movies.csv": "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
                "tags.csv": "92a9f8bb7916dceef6151209845788c3643f794dfa79d1feaec7121b5960399d",
                "links.csv": "97ad18e4e56a09363c65676b6cb3482ce3e2cea2372a24620c1599c843325f31",
                "README.txt": "63d22ac138e80fae37021797ed8e1b9424b5239dc576a137422adf783ae3f404",
            },
            description="100,836 ratings and 3,683 tags by 610 users on 9,742 movies (2018)",
            licence="GroupLens research licence; redistribution only under the same terms",
        ),
    ]
}

# The 447-row working subset seed 002 ships (not a GroupLens release: never downloaded).
SEED002 = DatasetSpec(
    name="seed-002",
    folder="seed-002-kmeans-article",
    files={"ratings": "filtered_ratings.csv"},
    layout={
        "ratings": Table(("row", "user", "item", "rating"), ("int", "int", "int", "float"),
                         ",", header=("", "userId", "movieId", "rating")),
    },
    genre_encoding="none",
    scale=HALF_STARS,
    expected=Expected(447, 100, 83),
    member_sha256={
        "filtered_ratings.csv": "9bf1dc63596b12c6ce0546262019f7d6d2746d1a01fcd78a5a3387f35b78a713"
    },
    description="seed 002's 447 ratings >= 4.0 (100 users, 83 movies) from The Movies Dataset",
    licence="as published by the article's authors (asdkazmi/AI-Movies-Recommendation-"
    "System-K-Means-Clustering, 'Prepairing Data/From Data/filtered_ratings.csv')",
    downloadable=False,
)

LOCAL_DATASETS = {SEED002.name: SEED002}


def get_spec(name: str) -> DatasetSpec:
    if name in MOVIELENS:
        return MOVIELENS[name]
    if name in LOCAL_DATASETS:
        return LOCAL_DATASETS[name]
    raise UnknownDataset(
        f"unknown dataset {name!r}; expected one of {sorted(MOVIELENS) + sorted(LOCAL_DATASETS)}"
        " or a synthetic preset (see `kmrec datasets list`)"
    )
