-- Argo CD health check for voiceagents.io VoiceAgent. Install it in
-- argocd-cm as resource.customizations.health.voiceagents.io_VoiceAgent
-- (docs/gitops.md). It reads the kstatus conditions the operator writes:
--   Stalled True                        -> Degraded (a person must act)
--   no status, an older generation,
--   or Reconciling True                 -> Progressing
--   Ready True for this generation      -> Healthy, also when disabled:
--     enabled: false is a state asked for in Git and reached, and Argo CD
--     treats Suspended as still running in a sync wave.
-- Argo CD runs it without Lua's string library, so it uses none.

local function health(status, message)
  return { status = status, message = message }
end

if obj.status == nil or obj.status.conditions == nil then
  return health("Progressing", "waiting for voice-operator to take up the VoiceAgent")
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and observed ~= generation then
  return health("Progressing", "voice-operator has not yet reconciled generation " .. generation)
end

local conditions = {}
for _, condition in ipairs(obj.status.conditions) do
  conditions[condition.type] = condition
end

local stalled = conditions["Stalled"]
if stalled ~= nil and stalled.status == "True" then
  return health("Degraded", stalled.message)
end
local reconciling = conditions["Reconciling"]
if reconciling ~= nil and reconciling.status == "True" then
  return health("Progressing", reconciling.message)
end
local ready = conditions["Ready"]
if ready ~= nil and ready.status == "True"
    and (ready.observedGeneration == nil or ready.observedGeneration == generation) then
  return health("Healthy", ready.message)
end
if ready ~= nil then
  return health("Progressing", ready.message)
end
return health("Progressing", "the VoiceAgent has no Ready condition yet")
