# API and KEY: what `make local` printed (or a deployed stack's ApiUrl output and its key)
photo=local/backdrop_local/samples/mug.png

# through the HTTPS API: send a photo, ask for three backgrounds, read the job
id=$(curl -s -X POST "$API/v1/generations" -H "x-api-key: $KEY" \
     -F image=@$photo -F prompt='on a marble counter, morning light' -F count=3 | jq -r .id)
curl -s "$API/v1/generations/$id" -H "x-api-key: $KEY" | jq '{id, status}'

# or the client: it waits, then downloads every result into backdrop-results/ (without
# BACKDROP_API_URL it finds a running `backdrop local` by itself, .backdrop/ready.json)
BACKDROP_API_URL=$API BACKDROP_API_KEY=$KEY \
  backdrop generate $photo --prompt 'on a marble counter' --count 3
