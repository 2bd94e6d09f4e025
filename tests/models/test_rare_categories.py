import pandas as pd

from models.contract import infer_contract
from models.preprocessing import MAX_CATEGORIES, MIN_CATEGORY_ROWS, UNKNOWN_CATEGORY, Preprocessor


def test_rare_categories_share_the_unknown_slot_and_width_is_capped() -> None:
    common = [f"c{i}" for i in range(MAX_CATEGORIES + 20)]
    values = [c for c in common for _ in range(MIN_CATEGORY_ROWS)] + ["rare"] * 3
    frame = pd.DataFrame(
        {"code": values, "y": [0, 1] * (len(values) // 2) + [0] * (len(values) % 2)}
    )
    contract = infer_contract(frame, "y", "1")
    pre = Preprocessor.fit(frame, contract)
    (codes,) = pre.categorical
    assert "rare" not in codes.categories
    assert len(codes.categories) == MAX_CATEGORIES
    x = pre.transform(pd.DataFrame({"code": ["rare", "never seen", codes.categories[0]]}))
    unknown = pre.output_names.index(f"code={UNKNOWN_CATEGORY}")
    assert x[:, unknown].tolist() == [1.0, 1.0, 0.0]
