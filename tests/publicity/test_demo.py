"""The demo publicity: posted once, with the board address printed."""

import sqlalchemy as sa

from residents_app.publicity.demo import extend_demo
from residents_app.publicity.models import Objection, Publicity

from .conftest import POSTED_NOW


def test_demo_posts_a_hardship_publicity_once(app, db, estate):
    with app.test_request_context():
        lines = extend_demo(estate, POSTED_NOW)
        again = extend_demo(estate, POSTED_NOW)
    assert lines == again == [
        "演示公示：示范小区困难群众名单公示（公示期：2026-09-30 至 2026-10-12（5个工作日））",
        f"公开公示栏（无需登录，可打印张贴二维码）：http://127.0.0.1:5000/p/{estate.code}"]
    pubs = db.session.execute(sa.select(Publicity)).scalars().all()
    assert len(pubs) == 1 and pubs[0].unit_labels == ["1幢-102", "2幢-1001"]
    assert [o.status for o in db.session.execute(sa.select(Objection)).scalars()] == ["answered"]
