"""The slice of GitHub's GraphQL schema that the github connector queries, so that the emulator
executes (and so validates) its real queries with graphql-core. Types, fields, arguments and
their defaults are copied from GitHub's published schema (octokit/graphql-schema,
schema.graphql at 82ff2d4, 2026-07-22), keeping only what the connector asks for; unions keep
only the members it selects."""

SDL = """
type Query {
  organization(login: String!): Organization
}

type Organization {
  login: String!
  repositories(
    affiliations: [RepositoryAffiliation]
    after: String
    before: String
    first: Int
    hasIssuesEnabled: Boolean
    isArchived: Boolean
    isFork: Boolean
    isLocked: Boolean
    last: Int
    orderBy: RepositoryOrder
    ownerAffiliations: [RepositoryAffiliation] = [OWNER, COLLABORATOR]
    privacy: RepositoryPrivacy
    visibility: RepositoryVisibility
  ): RepositoryConnection!
}

type RepositoryConnection {
  nodes: [Repository]
  pageInfo: PageInfo!
  totalCount: Int!
}

type PageInfo {
  endCursor: String
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
}

type Repository {
  collaborators(
    affiliation: CollaboratorAffiliation
    after: String
    before: String
    first: Int
    last: Int
    login: String
    query: String
  ): RepositoryCollaboratorConnection
  databaseId: Int
  defaultBranchRef: Ref
  hasVulnerabilityAlertsEnabled: Boolean!
  isArchived: Boolean!
  isFork: Boolean!
  isPrivate: Boolean!
  name: String!
  nameWithOwner: String!
  visibility: RepositoryVisibility!
}

type Ref {
  branchProtectionRule: BranchProtectionRule
  name: String!
  rules(
    after: String
    before: String
    first: Int
    last: Int
    orderBy: RepositoryRuleOrder = {direction: DESC, field: UPDATED_AT}
  ): RepositoryRuleConnection
}

type BranchProtectionRule {
  allowsDeletions: Boolean!
  allowsForcePushes: Boolean!
  dismissesStaleReviews: Boolean!
  isAdminEnforced: Boolean!
  pattern: String!
  requireLastPushApproval: Boolean!
  requiredApprovingReviewCount: Int
  requiresApprovingReviews: Boolean!
  requiresCodeOwnerReviews: Boolean!
  requiresStatusChecks: Boolean!
}

type RepositoryRuleConnection {
  nodes: [RepositoryRule]
  pageInfo: PageInfo!
  totalCount: Int!
}

type RepositoryRule {
  parameters: RuleParameters
  repositoryRuleset: RepositoryRuleset
  type: RepositoryRuleType!
}

type PullRequestParameters {
  dismissStaleReviewsOnPush: Boolean!
  requireCodeOwnerReview: Boolean!
  requireLastPushApproval: Boolean!
  requiredApprovingReviewCount: Int!
  requiredReviewThreadResolution: Boolean!
}

type RepositoryRuleset {
  bypassActors(
    after: String
    before: String
    first: Int
    last: Int
  ): RepositoryRulesetBypassActorConnection
  databaseId: Int
  enforcement: RuleEnforcement!
  name: String!
  target: RepositoryRulesetTarget
}

type RepositoryRulesetBypassActorConnection {
  nodes: [RepositoryRulesetBypassActor]
  pageInfo: PageInfo!
  totalCount: Int!
}

type RepositoryRulesetBypassActor {
  actor: BypassActor
  bypassMode: RepositoryRulesetBypassActorBypassMode
  deployKey: Boolean!
  enterpriseOwner: Boolean!
  organizationAdmin: Boolean!
  repositoryRoleDatabaseId: Int
  repositoryRoleName: String
}

type App {
  name: String!
  slug: String!
}

type Team {
  name: String!
  slug: String!
}

type RepositoryCollaboratorConnection {
  edges: [RepositoryCollaboratorEdge]
  pageInfo: PageInfo!
  totalCount: Int!
}

type RepositoryCollaboratorEdge {
  node: User!
  permission: RepositoryPermission!
}

type User {
  login: String!
}

union RuleParameters = PullRequestParameters

union BypassActor = App | Team

enum OrderDirection {
  ASC
  DESC
}

enum RepositoryOrderField {
  CREATED_AT
  NAME
  PUSHED_AT
  STARGAZERS
  UPDATED_AT
}

enum RepositoryAffiliation {
  COLLABORATOR
  ORGANIZATION_MEMBER
  OWNER
}

enum RepositoryPrivacy {
  PRIVATE
  PUBLIC
}

enum RepositoryVisibility {
  INTERNAL
  PRIVATE
  PUBLIC
}

enum RepositoryRuleOrderField {
  CREATED_AT
  TYPE
  UPDATED_AT
}

enum RepositoryRuleType {
  AUTHORIZATION
  BRANCH_NAME_PATTERN
  CODE_SCANNING
  COMMITTER_EMAIL_PATTERN
  COMMIT_AUTHOR_EMAIL_PATTERN
  COMMIT_MESSAGE_PATTERN
  CREATION
  DELETION
  FILE_EXTENSION_RESTRICTION
  FILE_PATH_RESTRICTION
  LOCK_BRANCH
  MAX_FILE_PATH_LENGTH
  MAX_FILE_SIZE
  MAX_REF_UPDATES
  MERGE_QUEUE
  MERGE_QUEUE_LOCKED_REF
  NON_FAST_FORWARD
  PULL_REQUEST
  REQUIRED_DEPLOYMENTS
  REQUIRED_LINEAR_HISTORY
  REQUIRED_REVIEW_THREAD_RESOLUTION
  REQUIRED_SIGNATURES
  REQUIRED_STATUS_CHECKS
  REQUIRED_WORKFLOW_STATUS_CHECKS
  SECRET_SCANNING
  TAG
  TAG_NAME_PATTERN
  UPDATE
  WORKFLOWS
  WORKFLOW_UPDATES
}

enum RuleEnforcement {
  ACTIVE
  DISABLED
  EVALUATE
}

enum RepositoryRulesetTarget {
  BRANCH
  PUSH
  REPOSITORY
  TAG
}

enum RepositoryRulesetBypassActorBypassMode {
  ALWAYS
  PULL_REQUEST
}

enum RepositoryPermission {
  ADMIN
  MAINTAIN
  READ
  TRIAGE
  WRITE
}

enum CollaboratorAffiliation {
  ALL
  DIRECT
  OUTSIDE
}

input RepositoryOrder {
  direction: OrderDirection!
  field: RepositoryOrderField!
}

input RepositoryRuleOrder {
  direction: OrderDirection!
  field: RepositoryRuleOrderField!
}

"""
