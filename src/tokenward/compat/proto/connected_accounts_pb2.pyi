import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConnectorStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONNECTION_STATUS_UNSPECIFIED: _ClassVar[ConnectorStatus]
    ACTIVE: _ClassVar[ConnectorStatus]
    EXPIRED: _ClassVar[ConnectorStatus]
    PENDING_AUTH: _ClassVar[ConnectorStatus]
    PENDING_VERIFICATION: _ClassVar[ConnectorStatus]
    DISCONNECTED: _ClassVar[ConnectorStatus]

class ConnectorType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONNECTION_TYPE_UNSPECIFIED: _ClassVar[ConnectorType]
    OAUTH: _ClassVar[ConnectorType]
    API_KEY: _ClassVar[ConnectorType]
    BASIC_AUTH: _ClassVar[ConnectorType]
    BEARER_TOKEN: _ClassVar[ConnectorType]
    CUSTOM: _ClassVar[ConnectorType]
    BASIC: _ClassVar[ConnectorType]
    OAUTH_M2M: _ClassVar[ConnectorType]
    TRELLO_OAUTH1: _ClassVar[ConnectorType]
    GOOGLE_DWD: _ClassVar[ConnectorType]
    TRUSTED_IDP: _ClassVar[ConnectorType]
    SMART_FHIR: _ClassVar[ConnectorType]
    NO_AUTH: _ClassVar[ConnectorType]
CONNECTION_STATUS_UNSPECIFIED: ConnectorStatus
ACTIVE: ConnectorStatus
EXPIRED: ConnectorStatus
PENDING_AUTH: ConnectorStatus
PENDING_VERIFICATION: ConnectorStatus
DISCONNECTED: ConnectorStatus
CONNECTION_TYPE_UNSPECIFIED: ConnectorType
OAUTH: ConnectorType
API_KEY: ConnectorType
BASIC_AUTH: ConnectorType
BEARER_TOKEN: ConnectorType
CUSTOM: ConnectorType
BASIC: ConnectorType
OAUTH_M2M: ConnectorType
TRELLO_OAUTH1: ConnectorType
GOOGLE_DWD: ConnectorType
TRUSTED_IDP: ConnectorType
SMART_FHIR: ConnectorType
NO_AUTH: ConnectorType

class GetMagicLinkForConnectedAccountRequest(_message.Message):
    __slots__ = ("organization_id", "user_id", "connector", "identifier", "id", "state", "user_verify_url")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTOR_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    USER_VERIFY_URL_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    user_id: str
    connector: str
    identifier: str
    id: str
    state: str
    user_verify_url: str
    def __init__(self, organization_id: _Optional[str] = ..., user_id: _Optional[str] = ..., connector: _Optional[str] = ..., identifier: _Optional[str] = ..., id: _Optional[str] = ..., state: _Optional[str] = ..., user_verify_url: _Optional[str] = ...) -> None: ...

class GetMagicLinkForConnectedAccountResponse(_message.Message):
    __slots__ = ("link", "expiry")
    LINK_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    link: str
    expiry: _timestamp_pb2.Timestamp
    def __init__(self, link: _Optional[str] = ..., expiry: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetConnectedAccountByIdentifierRequest(_message.Message):
    __slots__ = ("organization_id", "user_id", "connector", "identifier", "id")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTOR_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    user_id: str
    connector: str
    identifier: str
    id: str
    def __init__(self, organization_id: _Optional[str] = ..., user_id: _Optional[str] = ..., connector: _Optional[str] = ..., identifier: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class GetConnectedAccountByIdentifierResponse(_message.Message):
    __slots__ = ("connected_account",)
    CONNECTED_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    connected_account: ConnectedAccount
    def __init__(self, connected_account: _Optional[_Union[ConnectedAccount, _Mapping]] = ...) -> None: ...

class DeleteConnectedAccountRequest(_message.Message):
    __slots__ = ("organization_id", "user_id", "connector", "identifier", "id")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTOR_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    user_id: str
    connector: str
    identifier: str
    id: str
    def __init__(self, organization_id: _Optional[str] = ..., user_id: _Optional[str] = ..., connector: _Optional[str] = ..., identifier: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class DeleteConnectedAccountResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListConnectedAccountsRequest(_message.Message):
    __slots__ = ("organization_id", "user_id", "connector", "identifier", "provider", "page_size", "page_token", "query", "connection_names", "is_org_wide_credential")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTOR_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_NAMES_FIELD_NUMBER: _ClassVar[int]
    IS_ORG_WIDE_CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    user_id: str
    connector: str
    identifier: str
    provider: str
    page_size: int
    page_token: str
    query: str
    connection_names: _containers.RepeatedScalarFieldContainer[str]
    is_org_wide_credential: bool
    def __init__(self, organization_id: _Optional[str] = ..., user_id: _Optional[str] = ..., connector: _Optional[str] = ..., identifier: _Optional[str] = ..., provider: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., query: _Optional[str] = ..., connection_names: _Optional[_Iterable[str]] = ..., is_org_wide_credential: _Optional[bool] = ...) -> None: ...

class ListConnectedAccountsResponse(_message.Message):
    __slots__ = ("connected_accounts", "total_size", "next_page_token", "prev_page_token")
    CONNECTED_ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PREV_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    connected_accounts: _containers.RepeatedCompositeFieldContainer[ConnectedAccountForList]
    total_size: int
    next_page_token: str
    prev_page_token: str
    def __init__(self, connected_accounts: _Optional[_Iterable[_Union[ConnectedAccountForList, _Mapping]]] = ..., total_size: _Optional[int] = ..., next_page_token: _Optional[str] = ..., prev_page_token: _Optional[str] = ...) -> None: ...

class ConnectedAccountForList(_message.Message):
    __slots__ = ("identifier", "provider", "status", "authorization_type", "token_expires_at", "updated_at", "connector", "last_used_at", "id", "connection_id", "is_org_wide_credential")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    CONNECTOR_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    IS_ORG_WIDE_CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    identifier: str
    provider: str
    status: ConnectorStatus
    authorization_type: ConnectorType
    token_expires_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    connector: str
    last_used_at: _timestamp_pb2.Timestamp
    id: str
    connection_id: str
    is_org_wide_credential: bool
    def __init__(self, identifier: _Optional[str] = ..., provider: _Optional[str] = ..., status: _Optional[_Union[ConnectorStatus, str]] = ..., authorization_type: _Optional[_Union[ConnectorType, str]] = ..., token_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., connector: _Optional[str] = ..., last_used_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., id: _Optional[str] = ..., connection_id: _Optional[str] = ..., is_org_wide_credential: _Optional[bool] = ...) -> None: ...

class CreateConnectedAccountRequest(_message.Message):
    __slots__ = ("organization_id", "user_id", "connector", "identifier", "connected_account")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTOR_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    user_id: str
    connector: str
    identifier: str
    connected_account: CreateConnectedAccount
    def __init__(self, organization_id: _Optional[str] = ..., user_id: _Optional[str] = ..., connector: _Optional[str] = ..., identifier: _Optional[str] = ..., connected_account: _Optional[_Union[CreateConnectedAccount, _Mapping]] = ...) -> None: ...

class CreateConnectedAccount(_message.Message):
    __slots__ = ("authorization_details", "api_config")
    AUTHORIZATION_DETAILS_FIELD_NUMBER: _ClassVar[int]
    API_CONFIG_FIELD_NUMBER: _ClassVar[int]
    authorization_details: AuthorizationDetails
    api_config: _struct_pb2.Struct
    def __init__(self, authorization_details: _Optional[_Union[AuthorizationDetails, _Mapping]] = ..., api_config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CreateConnectedAccountResponse(_message.Message):
    __slots__ = ("connected_account",)
    CONNECTED_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    connected_account: ConnectedAccount
    def __init__(self, connected_account: _Optional[_Union[ConnectedAccount, _Mapping]] = ...) -> None: ...

class UpdateConnectedAccountRequest(_message.Message):
    __slots__ = ("organization_id", "user_id", "connector", "identifier", "connected_account", "id", "scope_selection")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTOR_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    SCOPE_SELECTION_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    user_id: str
    connector: str
    identifier: str
    connected_account: UpdateConnectedAccount
    id: str
    scope_selection: ScopeSelection
    def __init__(self, organization_id: _Optional[str] = ..., user_id: _Optional[str] = ..., connector: _Optional[str] = ..., identifier: _Optional[str] = ..., connected_account: _Optional[_Union[UpdateConnectedAccount, _Mapping]] = ..., id: _Optional[str] = ..., scope_selection: _Optional[_Union[ScopeSelection, _Mapping]] = ...) -> None: ...

class UpdateConnectedAccount(_message.Message):
    __slots__ = ("authorization_details", "api_config")
    AUTHORIZATION_DETAILS_FIELD_NUMBER: _ClassVar[int]
    API_CONFIG_FIELD_NUMBER: _ClassVar[int]
    authorization_details: AuthorizationDetails
    api_config: _struct_pb2.Struct
    def __init__(self, authorization_details: _Optional[_Union[AuthorizationDetails, _Mapping]] = ..., api_config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class UpdateConnectedAccountResponse(_message.Message):
    __slots__ = ("connected_account",)
    CONNECTED_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    connected_account: ConnectedAccount
    def __init__(self, connected_account: _Optional[_Union[ConnectedAccount, _Mapping]] = ...) -> None: ...

class ScopeSelection(_message.Message):
    __slots__ = ("scopes", "optional_scopes")
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_SCOPES_FIELD_NUMBER: _ClassVar[int]
    scopes: _containers.RepeatedScalarFieldContainer[str]
    optional_scopes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, scopes: _Optional[_Iterable[str]] = ..., optional_scopes: _Optional[_Iterable[str]] = ...) -> None: ...

class ConnectedAccount(_message.Message):
    __slots__ = ("identifier", "provider", "status", "authorization_type", "authorization_details", "token_expires_at", "updated_at", "connector", "last_used_at", "id", "connection_id", "api_config", "is_org_wide_credential")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_DETAILS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    CONNECTOR_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    API_CONFIG_FIELD_NUMBER: _ClassVar[int]
    IS_ORG_WIDE_CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    identifier: str
    provider: str
    status: ConnectorStatus
    authorization_type: ConnectorType
    authorization_details: AuthorizationDetails
    token_expires_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    connector: str
    last_used_at: _timestamp_pb2.Timestamp
    id: str
    connection_id: str
    api_config: _struct_pb2.Struct
    is_org_wide_credential: bool
    def __init__(self, identifier: _Optional[str] = ..., provider: _Optional[str] = ..., status: _Optional[_Union[ConnectorStatus, str]] = ..., authorization_type: _Optional[_Union[ConnectorType, str]] = ..., authorization_details: _Optional[_Union[AuthorizationDetails, _Mapping]] = ..., token_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., connector: _Optional[str] = ..., last_used_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., id: _Optional[str] = ..., connection_id: _Optional[str] = ..., api_config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., is_org_wide_credential: _Optional[bool] = ...) -> None: ...

class AuthorizationDetails(_message.Message):
    __slots__ = ("oauth_token", "static_auth", "google_dwd", "trusted_idp")
    OAUTH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATIC_AUTH_FIELD_NUMBER: _ClassVar[int]
    GOOGLE_DWD_FIELD_NUMBER: _ClassVar[int]
    TRUSTED_IDP_FIELD_NUMBER: _ClassVar[int]
    oauth_token: OauthToken
    static_auth: StaticAuth
    google_dwd: GoogleDWDAuth
    trusted_idp: TrustedIDPAuth
    def __init__(self, oauth_token: _Optional[_Union[OauthToken, _Mapping]] = ..., static_auth: _Optional[_Union[StaticAuth, _Mapping]] = ..., google_dwd: _Optional[_Union[GoogleDWDAuth, _Mapping]] = ..., trusted_idp: _Optional[_Union[TrustedIDPAuth, _Mapping]] = ...) -> None: ...

class OauthToken(_message.Message):
    __slots__ = ("access_token", "refresh_token", "scopes", "domain")
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    access_token: str
    refresh_token: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    domain: str
    def __init__(self, access_token: _Optional[str] = ..., refresh_token: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., domain: _Optional[str] = ...) -> None: ...

class StaticAuth(_message.Message):
    __slots__ = ("details",)
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    details: _struct_pb2.Struct
    def __init__(self, details: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GoogleDWDAuth(_message.Message):
    __slots__ = ("subject", "access_token", "scopes", "token_expires_at")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    TOKEN_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    subject: str
    access_token: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    token_expires_at: _timestamp_pb2.Timestamp
    def __init__(self, subject: _Optional[str] = ..., access_token: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., token_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TrustedIDPAuth(_message.Message):
    __slots__ = ("db_user", "access_key_id", "secret_access_key", "session_token", "expiry")
    DB_USER_FIELD_NUMBER: _ClassVar[int]
    ACCESS_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SECRET_ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    db_user: str
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiry: _timestamp_pb2.Timestamp
    def __init__(self, db_user: _Optional[str] = ..., access_key_id: _Optional[str] = ..., secret_access_key: _Optional[str] = ..., session_token: _Optional[str] = ..., expiry: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class VerifyConnectedAccountUserRequest(_message.Message):
    __slots__ = ("auth_request_id", "identifier")
    AUTH_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    auth_request_id: str
    identifier: str
    def __init__(self, auth_request_id: _Optional[str] = ..., identifier: _Optional[str] = ...) -> None: ...

class VerifyConnectedAccountUserResponse(_message.Message):
    __slots__ = ("post_user_verify_redirect_url",)
    POST_USER_VERIFY_REDIRECT_URL_FIELD_NUMBER: _ClassVar[int]
    post_user_verify_redirect_url: str
    def __init__(self, post_user_verify_redirect_url: _Optional[str] = ...) -> None: ...
