/**
 * Every number and pattern of the GPT Action rules (gpt-actions.md in the project's reference notes;
 * OpenAI's "Actions in GPTs" documentation) that a schema can carry: the generator builds within them,
 * the lint checks a served document against them.
 */
export const GPT_ACTION_LIMITS = Object.freeze({
  openapiVersions: ['3.1.0', '3.1.1'] as readonly string[],
  maxOperations: 30,
  /** Endpoint summary and description. */
  maxOperationText: 300,
  /** Parameter (and property) descriptions. */
  maxParameterDescription: 700,
  /** Files in (openaiFileIdRefs) and out (openaiFileResponse). */
  maxFiles: 10,
  maxFileBytes: 10 * 1024 * 1024,
  /** Request and response each under this many characters. */
  maxCharacters: 100_000,
  /** The whole round trip; a "wait" operation must give up before it. */
  roundTripSeconds: 45,
  maxWaitSeconds: 44,
});

export const OPERATION_ID_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;
export const OPENAI_FILE_ID_REF_FIELDS = ['name', 'id', 'mime_type', 'download_link'] as const;
