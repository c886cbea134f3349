export { createRecorder, type Recorder, type RecorderOptions, type RecorderEvent } from './recorder.js';
export { prometheusText, type RecorderMetrics } from './metrics.js';
