"""SCIM 2.0 provisioning (issue 17): Okta and Microsoft Entra ID create, update and
deactivate people in fairdraft, and push groups.

- resources.py: the schema fairdraft publishes (a User with only the attributes it keeps,
  the enterprise extension's employeeNumber, department and manager; the core Group) and
  the discovery documents, all as scim2-models models; the tolerance for the providers'
  quirks (ScimPolicy).
- errors.py: the domain errors these functions raise, each with its SCIM `scimType`.
- filters.py: the filters the providers send, turned into one SQL condition.
- mapping.py: a User resource to the people row's columns (what is kept, what defaults).
- users.py, groups.py: the service functions, each taking a connection.

No HTTP here: the router (service/api/routers/scim.py) reads requests and maps errors.
"""
