"""The centre's side of the gateways.

Enrollment and credentials, config distribution, telemetry ingest into the store with
end-to-end acknowledgement, online/offline tracking, and the technicians' provisioning and
commissioning commands.
"""
