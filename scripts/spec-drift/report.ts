import type { Acknowledgement } from '../generate/marks.ts';
import type { EnumValue } from './schema.ts';

/** What `npm run spec:drift` reports (scripts/spec-drift/main.ts explains each part). */

export interface OperationRef { method: string; path: string; operationId: string }
export interface ContentTypeChange extends OperationRef {
  where: 'request' | 'response';
  relay: string[];
  official: string[];
}
export interface RequiredFieldChange extends OperationRef { contentType: string; field: string }
export interface EnumChange extends OperationRef {
  location: 'body' | 'query';
  name: string;
  contentType?: string;
  added: EnumValue[];
  removed: EnumValue[];
}
export interface FamilyDrift {
  missingOperations: OperationRef[];
  removedOperations: OperationRef[];
  contentTypeChanges: ContentTypeChange[];
  newRequiredFields: RequiredFieldChange[];
  enumChanges: EnumChange[];
}
export type DriftKind = keyof FamilyDrift;
export const KINDS: DriftKind[] = ['missingOperations', 'removedOperations', 'contentTypeChanges', 'newRequiredFields', 'enumChanges'];

/** A difference the relay's spec keeps on purpose, with the mark's reason. */
export interface AcknowledgedDifference {
  family: string;
  kind: DriftKind;
  difference: OperationRef;
  reason: string;
}

/** A mark that no longer matches any difference: the official spec changed, and the mark should go. */
export interface StaleAcknowledgement {
  /** `METHOD /v1/path (operationId)`, or `document` for a document-level mark. */
  at: string;
  mark: Acknowledgement;
}

export interface DriftReport {
  summary: Record<DriftKind, number> & {
    /** Families the relay serves. */
    families: number;
    /** New (unacknowledged) differences: the report exits 1 when this or `stale` is above 0. */
    total: number;
    acknowledged: number;
    stale: number;
    /** Relay operations OpenAI shut down (x-relay.retired): answered 410, not compared. */
    retired: number;
    /** Official operations in families the relay does not serve. */
    unserved: number;
  };
  /** New differences, per family the relay serves. */
  families: Record<string, FamilyDrift>;
  acknowledged: AcknowledgedDifference[];
  stale: StaleAcknowledgement[];
  retired: OperationRef[];
  /** Official operations of the families the relay does not serve, by family. */
  unserved: Record<string, OperationRef[]>;
}
