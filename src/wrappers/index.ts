export { instrumentOpenAI, type OpenAIClientLike } from './openai.js';
export { instrumentAnthropic, type AnthropicClientLike } from './anthropic.js';
export { type InstrumentOptions, type CallSink } from './observe.js';
