"""Migrations build exactly the schema the models describe, on the database under test."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from residents_app import create_app
from residents_app.extensions import db

from .conftest import PG_ADMIN, TEST_DB


@pytest.fixture
def empty_database_url(tmp_path):
    if TEST_DB != "postgresql":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    import psycopg
    from psycopg import sql

    name = f"rapp_mig_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_upgrade_matches_models_and_downgrades(empty_database_url):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, db.metadata)
        assert diff == []
        with db.engine.begin() as conn:
            # the append-only guard is installed by the migration, not only by tests
            conn.execute(sa.text(
                "INSERT INTO audit_event (chain, seq, kind, at, actor, subject_type, subject_id, data, prev_hash, hash)"
                " VALUES (0, 1, 'k', CURRENT_TIMESTAMP, 'a', '', '', '{}', 'p', 'h')"))
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE audit_event SET kind = 'x'"))
        downgrade(revision="base")
        with db.engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == ["alembic_version"]
        db.engine.dispose()


def test_roll_subject_migration_keeps_publicity_and_objections(empty_database_url):
    """7c2d91a4b3e0 widens publicity's subject check in place (SQLite: no table rebuild, which would cascade-delete
    objections): rows written before it survive, the widened check admits 'round_roll' and still refuses others."""
    from residents_app.core.calendar import beijing_date
    from residents_app.publicity import services as pub_services
    from residents_app.publicity.models import Objection, Publicity

    from .conftest import NOW, Factory

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        upgrade(revision="5fd1e8ca68ce")
        estate = Factory(db).estate(code="MIG", buildings={"1幢": [("101", "88.50")]})
        unit = estate.buildings[0].units[0]
        pub = pub_services.post_publicity(estate, subject_type="hardship_list", subject_id=estate.id,
                                          title="困难群众名单公示", notice_text="请核对", posted_on=beijing_date(NOW),
                                          working_days=5, actor="test", now=NOW)
        pub_services.raise_objection(pub, unit=unit, owner=unit.owners[0], text="名单有误", photo=None, now=NOW)
        db.session.commit()
        db.session.remove()
        upgrade()
        assert db.session.execute(sa.select(sa.func.count()).select_from(Objection)).scalar_one() == 1
        assert db.session.execute(sa.select(Publicity.subject_type)).scalars().all() == ["hardship_list"]
        db.session.remove()  # (SQLite: a session transaction holds the write lock)
        with db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE publicity SET subject_type = 'round_roll'"))
        with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE publicity SET subject_type = 'bogus'"))
        # Downgrading is refused while a frozen roll's publicity exists, and allowed once there is none.
        with pytest.raises(SystemExit):  # flask-migrate reports the migration's RuntimeError and exits 1
            downgrade(revision="5fd1e8ca68ce")
        with db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE publicity SET subject_type = 'hardship_list'"))
        downgrade(revision="5fd1e8ca68ce")
        with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE publicity SET subject_type = 'round_roll'"))
        assert db.session.execute(sa.select(sa.func.count()).select_from(Objection)).scalar_one() == 1
        db.session.remove()
        downgrade(revision="base")
        db.session.remove()
        db.engine.dispose()


def test_unit_owed_migration_back_fills_the_versions_in_force(empty_database_url):
    """a19c7e0d2b36 creates unit_owed and saves the owed amounts of every plan version already published;
    c4e8f1a20d57 adds each unit's detail and the version's figures, back-filled the same way."""
    from residents_app.funding import services as funding_svc
    from residents_app.plans import services as plan_svc

    from .conftest import NOW, Factory

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        upgrade()
        factory = Factory(db)
        estate = factory.estate(code="OWE", buildings={"1幢": [("101", "60.00"), ("102", "40.00")],
                                                       "2幢": [("101", "100.00")]})
        committee = factory.user("committee", estate=estate)
        u101, u102 = sorted(next(b for b in estate.buildings if b.name == "1幢").units, key=lambda u: u.number)
        (u201,) = next(b for b in estate.buildings if b.name == "2幢").units
        funding_svc.set_hardship(estate, u102, mode="partial", subsidy_fen=60_000, covered_by="街道",
                                 user=committee, now=NOW)
        plan = plan_svc.create_plan(estate, title="改造方案", user=committee, now=NOW, management_plan="物业负责")
        for name, category, cost in (("外墙保温", "basic", 1_000_000), ("停车位改造", "improvement", 1_000_000)):
            plan_svc.add_item(plan, name=name, category=category, cost_fen=cost, user=committee, now=NOW)
        plan_svc.create_plan(estate, title="未发布", user=committee, now=NOW, management_plan="物业负责")  # no rows
        plan_svc.publish_plan(plan, user=committee, now=NOW)
        db.session.commit()
        ids = (plan.id, u101.id, u102.id, u201.id)
        db.session.remove()  # (SQLite: a session transaction holds the write lock)

        def saved():
            with db.engine.connect() as conn:
                return conn.execute(sa.text(
                    "SELECT plan_version_id, unit_id, share_fen, covered_fen, offset_fen, owed_fen FROM unit_owed"
                    " ORDER BY plan_version_id, unit_id")).all()

        # 400,000 fen by area: 120,000 / 80,000 (60,000 of it covered) / 200,000
        expected = [(ids[0], ids[1], 120_000, 0, 0, 120_000), (ids[0], ids[2], 80_000, 60_000, 0, 20_000),
                    (ids[0], ids[3], 200_000, 0, 0, 200_000)]
        assert saved() == expected
        downgrade(revision="f16a2b3c4d5e")
        with db.engine.connect() as conn:
            assert "unit_owed" not in sa.inspect(conn).get_table_names()
        upgrade()
        assert saved() == expected

        def detail():
            with db.engine.connect() as conn:
                return (conn.execute(sa.text("SELECT count(*) FROM unit_owed WHERE detail IS NULL")).scalar_one(),
                        conn.execute(sa.text("SELECT plan_version_id FROM plan_owed")).scalars().all())

        # c4e8f1a20d57 keeps each unit's detail and the version's figures, back-filled too
        assert detail() == (0, [ids[0]])
        downgrade(revision="a19c7e0d2b36")
        with db.engine.connect() as conn:
            assert "plan_owed" not in sa.inspect(conn).get_table_names()
        upgrade()
        assert saved() == expected and detail() == (0, [ids[0]])
        from residents_app.funding import owed
        from residents_app.plans.models import PlanVersion

        plan = db.session.get(PlanVersion, ids[0])
        assert owed.stored_contributions(plan) == funding_svc.compute_plan(plan)
        db.session.remove()
        downgrade(revision="base")
        db.session.remove()
        db.engine.dispose()


def test_person_counters_migration_back_fills_person_rounds(empty_database_url):
    """d4e8a7c2f915 adds the person counters and back-fills opened person-counted rounds from their roll's owner
    sets and counted ballots: the same rows the cast path keeps (the recount finds no difference)."""
    from datetime import timedelta

    from residents_app.registry.models import Ownership
    from residents_app.rounds import ballots, counters
    from residents_app.rounds import services as rs

    from .conftest import NOW, Factory

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        upgrade()
        estate = Factory(db).estate(code="PER", buildings={"1幢": [("101", "60.00"), ("102", "40.00")],
                                                           "2幢": [("101", "100.00")]})
        u1, u2, u3 = sorted((u for b in estate.buildings for u in b.units), key=lambda u: u.id)
        o1, o3 = u1.ownerships[0].owner_id, u3.ownerships[0].owner_id
        db.session.delete(u2.ownerships[0])
        db.session.add(Ownership(unit_id=u2.id, owner_id=o1))  # u1 + u2: one person
        db.session.flush()
        ids = []
        for mode in ("person", "household"):
            rnd = rs.create_round(estate.id, rs.RoundInput(kind="general", matter_item=7, title=mode, opens_at=NOW,
                                                           closes_at=NOW + timedelta(days=1), counting_mode=mode),
                                  NOW)
            rs.open_round(rnd.id, NOW, None)
            for u, o, choice in ((u1, o1, "agree"), (u2, o1, "disagree"), (u3, o3, "agree")):
                ballots.cast_ballot(rnd.id, u.id, o, choice, NOW + timedelta(hours=1))
            ids.append(rnd.id)
        u1, u2, u3 = u1.id, u2.id, u3.id
        db.session.commit()
        db.session.remove()

        def saved():
            with db.engine.connect() as conn:
                return (conn.execute(sa.text("SELECT round_id, unit_id, person_unit_id FROM roll_entry "
                                             "ORDER BY round_id, unit_id")).all(),
                        conn.execute(sa.text("SELECT round_id, person_unit_id, units, voted, agreeing "
                                             "FROM round_person ORDER BY round_id, person_unit_id")).all(),
                        conn.execute(sa.text("SELECT round_id, SUM(persons), SUM(participated), SUM(agree), "
                                             "SUM(potential) FROM round_person_count GROUP BY round_id")).all())

        person, household = ids
        expected = ([(person, u1, u1), (person, u2, u1), (person, u3, u3),
                     (household, u1, None), (household, u2, None), (household, u3, None)],
                    [(person, u1, 2, 2, 1), (person, u3, 1, 1, 1)],
                    [(person, 2, 2, 1, 1)])
        assert saved() == expected
        db.session.remove()
        downgrade(revision="a19c7e0d2b36")
        upgrade()
        assert saved() == expected
        assert counters.check_counters() == []
        db.session.remove()
        db.engine.dispose()  # (the database is dropped by the fixture)
