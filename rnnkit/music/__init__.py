"""Music: folk tunes in ABC notation as token sequences for the language model (folk-rnn's
scheme), their quality checks, and export through music21."""
