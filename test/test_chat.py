"""The one chat-message layout (actial_ros.chat) that the backends, the training prompts and the teacher share."""

from __future__ import annotations

from actial_ros.chat import IMAGE_PLACEHOLDER, chat_messages, image_url_part


def test_system_then_images_then_text_then_the_target() -> None:
    url = 'data:image/jpeg;base64,AAAA'
    images = [image_url_part(url), IMAGE_PLACEHOLDER]
    messages = chat_messages('Which way?', system_prompt='Think first.', images=images, target='<answer>A</answer>')
    assert messages == [
        {'role': 'system', 'content': 'Think first.'},
        {
            'role': 'user',
            'content': [
                {'type': 'image_url', 'image_url': {'url': url}},
                {'type': 'image'},
                {'type': 'text', 'text': 'Which way?'},
            ],
        },
        {'role': 'assistant', 'content': '<answer>A</answer>'},
    ]
    messages[1]['content'][1]['type'] = 'changed'
    assert IMAGE_PLACEHOLDER == {'type': 'image'}  # the caller's parts are copied, the constant stays


def test_no_system_message_for_an_empty_prompt_and_text_only_for_trl() -> None:
    assert chat_messages('Q', system_prompt='') == [{'role': 'user', 'content': 'Q'}]
