export { callSchema, parseCall, InvalidCallError, type Call, type CallInput } from './call.js';
export { recordCall, RejectedCallError, type RecordedCall } from './record-call.js';
export { createRecorder, type Recorder, type RecorderOptions, type RecorderEvent } from './recorder.js';
export { prometheusText, type RecorderMetrics } from './metrics.js';
