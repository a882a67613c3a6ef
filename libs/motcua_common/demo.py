"""Demo reference data shared by every service's `prepare(demo=True)`, so the wards, the
officers and the queue services agree across the five databases.

Ward ids follow today's two-tier structure (province -> ward) as readable slugs; each demo
ward is also the real ward of that official code (vietnam-provinces), opened the way any
ward is."""
from __future__ import annotations

WARDS = [
    {"ward_id": "dn-hai-chau", "name": "Phường Hải Châu", "province": "Thành phố Đà Nẵng",
     "province_code": "048", "target_population": 8027, "official_code": "20242"},
    {"ward_id": "dn-lien-chieu", "name": "Phường Liên Chiểu", "province": "Thành phố Đà Nẵng",
     "province_code": "048", "target_population": 12450, "official_code": "20197"},
    {"ward_id": "hn-ba-dinh", "name": "Phường Ba Đình", "province": "Thành phố Hà Nội",
     "province_code": "001", "target_population": 15300, "official_code": "00004"},
    {"ward_id": "tn-song-cong", "name": "Phường Sông Công", "province": "Tỉnh Thái Nguyên",
     "province_code": "019", "target_population": 9800, "official_code": "05518"},
]

# Demo staff only exist with --demo; the password is printed in the README for trying it out.
DEMO_STAFF_PASSWORD = "MotCua-demo-2026"
DEMO_STAFF = [
    # username, full name, ward, role
    ("canbo.haichau", "Nguyễn Thị Lan", "dn-hai-chau", "officer"),
    ("truongbp.haichau", "Trần Văn Minh", "dn-hai-chau", "ward_admin"),
    ("canbo.lienchieu", "Lê Thị Hoa", "dn-lien-chieu", "officer"),
    ("canbo.badinh", "Phạm Quốc Huy", "hn-ba-dinh", "officer"),
    ("canbo.songcong", "Đỗ Thị Mai", "tn-song-cong", "officer"),
    # Each demo ward's leader (chủ tịch or phó chủ tịch), who alone approves and signs results.
    ("lanhdao.haichau", "Hoàng Văn Thắng", "dn-hai-chau", "leader"),
    ("lanhdao.lienchieu", "Vũ Thị Thu", "dn-lien-chieu", "leader"),
    ("lanhdao.badinh", "Ngô Đức Anh", "hn-ba-dinh", "leader"),
    ("lanhdao.songcong", "Bùi Thị Hạnh", "tn-song-cong", "leader"),
    ("giamsat.thanhpho", "Trung tâm giám sát", None, "monitor"),
]


def ward_ids() -> list[str]:
    return [w["ward_id"] for w in WARDS]
