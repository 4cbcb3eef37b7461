"""FHIR R4 for referring clinical systems: referrals in as messages, status back as resources.

- ``systems``: the identifier and code system URLs we read and write.
- ``outcome``: errors as OperationOutcome, each issue naming the element at fault.
- ``questionnaire``: the published Questionnaire whose linkIds are the JSON API's field paths.
- ``mapping``: a FHIR message Bundle → the same ``SystemReferralCreate`` the JSON API takes
  (the one mapping; intake is ``app.services.intake.submit_referral`` for both).
- ``resources``: our ServiceRequest, Task, Bundles and CapabilityStatement.
- ``status``: the Task's status and business status from the referral and its case.

The rules are in docs/domain/fhir-and-codes.md.
"""
