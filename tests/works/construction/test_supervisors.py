"""Item 5: resident supervisors appointed by the committee record inspections; problems become rectification
items with an owner and a due day, closed with a note."""

from __future__ import annotations

import io
from datetime import date
from unittest import mock

import pytest

from residents_app.errors import Conflict, ValidationFailed
from residents_app.publicity.holidays import load_calendar
from residents_app.works.construction import services, supervisors
from residents_app.works.construction.models import ConstructionPhoto, Inspection, RectificationItem
from tests.conftest import login
from tests.works.construction.conftest import jpeg_with_exif

VIEWS_NOW = "residents_app.works.construction.resident_views.utcnow"


def test_committee_appoints_and_supervisor_records_a_problem(project, world, client, resident_login, db, app):
    contractor = services.add_party(project, kind="contractor", name="宏达建设", contact_name="王工",
                                    contact_phone="13800000001", user=world.committee, now=world.now)
    db.session.commit()
    owner = world.owner(world.u102)
    login(client, world.committee)
    assert client.post(f"/estates/{world.estate.id}/construction/supervisors",
                       data={"owner_id": owner.id}).status_code == 302
    rc = app.test_client()
    resident_login(rc, world.u102)
    with mock.patch(VIEWS_NOW, return_value=world.now):
        assert 'id="inspect"' in rc.get("/r/construction").get_data(as_text=True)
        resp = rc.post("/r/inspections", data={
            "inspected_on": "2026-09-01", "place": "1幢屋面", "finding": "防水卷材搭接不足 10 厘米",
            "has_problem": "1", "photos": [(io.BytesIO(jpeg_with_exif((800, 600))), "p.jpg")]},
            content_type="multipart/form-data")
    assert resp.status_code == 302
    insp = db.session.query(Inspection).one()
    item = insp.rectification_item
    # recorded Tue 9/1: five working days -> Tue 9/8
    assert (item.source, item.source_id, item.description, item.owner_party_id, item.due_on, item.state) == (
        "inspection", insp.id, "1幢屋面：防水卷材搭接不足 10 厘米", contractor.id, date(2026, 9, 8), "open")
    (ph,) = db.session.query(ConstructionPhoto).filter_by(subject_type="inspection").all()
    assert (ph.width, ph.height) == (600, 800)  # turned upright
    page = client.get(f"/estates/{world.estate.id}/construction").get_data(as_text=True)
    assert "防水卷材搭接不足 10 厘米" in page and "民间监理巡查" in page
    assert client.post(f"/estates/{world.estate.id}/construction/rectifications/{item.id}/close",
                       data={"note": "已返工，搭接 12 厘米"}).status_code == 302
    db.session.refresh(item)
    assert (item.state, item.closing_note, item.closed_by_id) == ("closed", "已返工，搭接 12 厘米", world.committee.id)


def test_an_inspection_without_problem_opens_nothing(project, world, db):
    s = supervisors.appoint(project, world.owner(world.u101).id, user=world.committee, now=world.now)
    insp = supervisors.record_inspection(project, s, inspected_on="2026-08-31", place="2幢", finding="正常",
                                         has_problem=False, photos=[], calendar=load_calendar(), now=world.now)
    assert insp.rectification_item is None
    assert db.session.query(RectificationItem).count() == 0


def test_inspection_validated(project, world):
    s = supervisors.appoint(project, world.owner(world.u101).id, user=world.committee, now=world.now)
    with pytest.raises(ValidationFailed) as info:
        supervisors.record_inspection(project, s, inspected_on="2026-09-02", place="", finding="",
                                      has_problem=True, photos=[], calendar=load_calendar(), now=world.now)
    assert info.value.errors == {"inspected_on": ["巡查日期不能晚于今天"], "place": ["请填写巡查部位（不超过 200 字）"],
                                 "finding": ["请填写巡查情况"]}


def test_only_this_estates_owners_and_only_once(project, world, factory, db):
    other = factory.estate(office=world.office, buildings={"1幢": [("101", "50.00")]})
    stranger = other.buildings[0].units[0].owners[0]
    with pytest.raises(ValidationFailed):
        supervisors.appoint(project, stranger.id, user=world.committee, now=world.now)
    supervisors.appoint(project, world.owner(world.u101).id, user=world.committee, now=world.now)
    with pytest.raises(Conflict) as info:
        supervisors.appoint(project, world.owner(world.u101).id, user=world.committee, now=world.now)
    assert info.value.code == "already_supervisor"


def test_not_a_supervisor_cannot_record(project, world, client, resident_login, db):
    s = supervisors.appoint(project, world.owner(world.u101).id, user=world.committee, now=world.now)
    supervisors.end_appointment(project, s.id, user=world.committee, now=world.now)
    db.session.commit()
    resident_login(client, world.u101)
    assert 'id="inspect"' not in client.get("/r/construction").get_data(as_text=True)
    resp = client.post("/r/inspections", data={"inspected_on": "2026-09-01", "place": "x", "finding": "y"})
    assert resp.status_code == 404


def test_closing_a_rectification_needs_a_note(project, world):
    item = services.open_rectification(project, source="acceptance", source_id=None, description="栏杆松动",
                                       owner_party=None, due_on=date(2026, 9, 10), user=world.committee,
                                       now=world.now)
    assert item.is_overdue(date(2026, 9, 11)) and not item.is_overdue(date(2026, 9, 10))
    with pytest.raises(Conflict) as info:
        services.close_rectification(project, item.id, note=" ", user=world.committee, now=world.now)
    assert info.value.code == "closing_note_required"
    services.close_rectification(project, item.id, note="已加固", user=world.committee, now=world.now)
    assert not item.is_overdue(date(2026, 9, 11))
    with pytest.raises(Conflict):
        services.close_rectification(project, item.id, note="再次", user=world.committee, now=world.now)
