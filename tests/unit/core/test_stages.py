from stream.core.stages import Stage, next_stage


def test_browsing_keeps_awareness() -> None:
    assert next_stage(Stage.AWARENESS, "page_view", 0, 0) is Stage.AWARENESS


def test_add_to_cart_moves_awareness_to_acquisition() -> None:
    assert next_stage(Stage.AWARENESS, "add_to_cart", 0, 0) is Stage.ACQUISITION


def test_first_purchase_starts_onboarding_from_awareness_or_acquisition() -> None:
    assert next_stage(Stage.AWARENESS, "store_purchase", 1, 0) is Stage.ONBOARDING
    assert next_stage(Stage.ACQUISITION, "order_completed", 1, 0) is Stage.ONBOARDING


def test_second_purchase_or_app_use_ends_onboarding() -> None:
    assert next_stage(Stage.ONBOARDING, "order_completed", 2, 0) is Stage.ENGAGEMENT
    assert next_stage(Stage.ONBOARDING, "qr_scanned", 1, 0) is Stage.ENGAGEMENT
    assert next_stage(Stage.ONBOARDING, "page_view", 1, 0) is Stage.ONBOARDING


def test_fifth_purchase_makes_an_advocate_unless_a_case_is_open() -> None:
    assert next_stage(Stage.ENGAGEMENT, "order_completed", 5, 0) is Stage.ADVOCACY
    assert next_stage(Stage.ENGAGEMENT, "order_completed", 5, 1) is Stage.ENGAGEMENT


def test_complaint_sends_an_advocate_back_to_engagement() -> None:
    assert next_stage(Stage.ADVOCACY, "complaint_opened", 9, 1) is Stage.ENGAGEMENT
    assert next_stage(Stage.ADVOCACY, "page_view", 9, 0) is Stage.ADVOCACY


def test_a_buyer_never_falls_back_to_awareness() -> None:
    for stage in (Stage.ONBOARDING, Stage.ENGAGEMENT, Stage.ADVOCACY):
        for event_type in ("page_view", "complaint_opened", "unsubscribed", "product_return"):
            assert next_stage(stage, event_type, 1, 1) not in (Stage.AWARENESS, Stage.ACQUISITION)


def test_praise_in_public_from_a_buyer_makes_an_advocate() -> None:
    for stage in (Stage.ONBOARDING, Stage.ENGAGEMENT):
        assert next_stage(stage, "review", 1, 0, praise=True) is Stage.ADVOCACY
        assert next_stage(stage, "mention", 1, 1, praise=True) is stage  # a case is open
    assert next_stage(Stage.ONBOARDING, "mention", 1, 0) is Stage.ONBOARDING  # not praise


def test_praise_before_any_purchase_moves_no_one() -> None:
    for stage in (Stage.AWARENESS, Stage.ACQUISITION):
        assert next_stage(stage, "mention", 0, 0, praise=True) is stage


def test_a_case_opened_on_social_media_sends_an_advocate_back_to_engagement() -> None:
    assert next_stage(Stage.ADVOCACY, "mention", 9, 1, case_opened=True) is Stage.ENGAGEMENT
    assert next_stage(Stage.ADVOCACY, "mention", 9, 0) is Stage.ADVOCACY
